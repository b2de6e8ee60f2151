// Loaded after the Stripe emulator's Stripe.js stand-in, in `onsale dev` only: completes
// confirmCardPayment as Stripe's servers would (see onsale/checkout/emulator.py).
(() => {
  const emulated = window.Stripe;
  window.Stripe = (key) => {
    const stripe = emulated(key);
    stripe.confirmCardPayment = async (clientSecret, data) => {
      const method = (data && data.payment_method) || {};
      const response = await fetch("/dev/stripe/confirm_card_payment", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          client_secret: clientSecret,
          card: method.card && method.card.value ? method.card.value.card : null,
          billing_details: method.billing_details || {},
        }),
      });
      return response.json();
    };
    return stripe;
  };
})();
