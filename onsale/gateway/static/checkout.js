// The buyer's page, after the hold: details, card payment with Stripe.js, then the order
// and its tickets. buyer.js starts it with the page's shared helpers; nothing here runs
// until a hold exists (or a paid order is remembered from an earlier visit).
window.onsaleCheckout = (page) => {
  "use strict";
  const { $, api, money, show, store } = page;
  const main = $("main");
  const WATCH_MS = 30_000; // how long to wait for Stripe's webhook before saying so
  const QR_DELAYS = [1, 2, 3, 5, 8, 13]; // seconds between tries for a ticket's image
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const enc = encodeURIComponent;
  // randomUUID needs a secure context; a phone on the LAN trying `onsale dev` is not one.
  const newKey = () => (crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join(""));

  let stripe = null; // the Stripe.js client, once loaded
  let card = null; // its card element, mounted once and reused for every attempt
  let secret = ""; // the PaymentIntent's client secret (kept in memory only)
  let paying = false;
  let generation = 0; // bumped whenever the view changes: stale loops stop
  let objectUrls = [];

  const saved = () => store.get();

  // ---- details -----------------------------------------------------------------------
  const fields = {
    email: { input: $("buyer-email"), error: $("buyer-email-error") },
    name: { input: $("buyer-name"), error: $("buyer-name-error") },
  };

  function fieldError(field, text) {
    field.error.textContent = text;
    show(field.error, Boolean(text));
    if (text) field.input.setAttribute("aria-invalid", "true");
    else field.input.removeAttribute("aria-invalid");
  }

  function validate() {
    const email = fields.email.input.value.trim();
    const name = fields.name.input.value.trim();
    fieldError(fields.email, !email ? "Enter your email address."
      : /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) ? "" : "Enter an email address like name@example.com.");
    fieldError(fields.name, name ? "" : "Enter the name the tickets are for.");
    const bad = Object.values(fields).find((f) => f.input.hasAttribute("aria-invalid"));
    if (bad) bad.input.focus();
    return bad ? null : { email, name };
  }

  function status(text) {
    if ($("payment-status").textContent !== text) $("payment-status").textContent = text;
  }

  // A button doing its work says so, and cannot be pressed twice.
  function busy(button, text) {
    if (text && !button.dataset.idle) button.dataset.idle = button.textContent;
    if (!text && button.dataset.idle) {
      button.textContent = button.dataset.idle;
      delete button.dataset.idle;
    }
    if (text) button.textContent = text;
    button.disabled = Boolean(text);
  }

  // A hold is on screen: ask for details, or pick up the order this hold already has.
  function start(hold) {
    const s = saved();
    if (!s.checkout || s.checkout.hold_id !== hold.hold_id) {
      // One key per hold, kept across reloads: a retry or a double click is the same order.
      s.checkout = { hold_id: hold.hold_id, key: newKey() };
      delete s.order;
      store.save();
    }
    show($("details"), true);
    show($("pay"), false);
    status("");
    fields.email.input.value = s.checkout.email || fields.email.input.value;
    fields.name.input.value = s.checkout.name || fields.name.input.value;
    if (s.order) sendDetails({ email: s.checkout.email, name: s.checkout.name });
  }

  async function submitDetails(event) {
    event.preventDefault();
    const details = validate();
    if (details) sendDetails(details);
  }

  async function sendDetails(details) {
    const c = saved().checkout;
    const button = $("details-button");
    if (!c || button.disabled) return;
    Object.assign(c, details);
    store.save();
    page.showError("");
    busy(button, "Starting checkout…");
    const r = await api("POST", `/api/holds/${enc(c.hold_id)}/checkout`, {
      body: details, headers: { "Idempotency-Key": c.key },
    }).catch(() => null);
    busy(button, "");
    if (r && r.status === 201) return ordered(r.data);
    const code = r && r.data && r.data.code;
    if (code === "hold_expired") return page.holdGone("Your hold ran out and the tickets went back on sale.");
    if (code === "idempotency_conflict") {
      return page.showError("This hold's order was started with another email or name. " +
        "Enter the details you used first, or release the tickets and start again.");
    }
    page.showError(page.problem(r));
  }

  function ordered(order) {
    const s = saved();
    s.order = { id: order.order_id, token: order.order_token, hold_id: s.checkout.hold_id };
    store.save();
    if (order.status === "confirmed") return settled(); // a free order: nothing to pay
    if (order.status === "failed" || !order.payment) {
      return page.holdGone("Your last payment didn't go through and the tickets were released. " +
        "You can hold them again.");
    }
    secret = order.payment.client_secret;
    cardStep();
  }

  // ---- card --------------------------------------------------------------------------
  let stripeLoading = null;
  function loadStripe() {
    const url = main.dataset.stripeJs;
    if (!url || !main.dataset.stripeKey) return Promise.reject(new Error("not configured"));
    stripeLoading = stripeLoading || new Promise((resolve, reject) => {
      const load = (src, next) => {
        const script = document.createElement("script");
        script.src = src;
        script.onload = next;
        script.onerror = () => {
          script.remove();
          reject(new Error("unreachable"));
        };
        document.head.append(script);
      };
      const ready = () => {
        try {
          resolve(window.Stripe(main.dataset.stripeKey));
        } catch (err) {
          reject(err);
        }
      };
      const bridge = main.dataset.stripeBridge; // the emulator's missing half (dev only)
      load(url, bridge ? () => load(bridge, ready) : ready);
    }).catch((err) => {
      stripeLoading = null; // a later attempt loads it again
      throw err;
    });
    return stripeLoading;
  }

  async function cardStep() {
    const c = saved().checkout;
    show($("details"), false);
    show($("pay"), true);
    $("payer").textContent = `Paying as ${c.name} (${c.email}).`;
    $("pay-button").textContent = `Pay ${money(saved().hold.amount)}`;
    $("card-heading").focus();
    if (card) {
      $("pay-button").disabled = false;
      return;
    }
    status("Loading the secure card form…");
    try {
      stripe = await loadStripe();
    } catch (err) {
      status("");
      return cardError(err && err.message === "not configured"
        ? "Card payment isn't available on this site right now. Please try again later."
        : "Card payment could not load. Check your connection and reload the page; " +
          "your tickets stay held.");
    }
    const css = getComputedStyle(document.body);
    card = stripe.elements().create("card", {
      style: { base: { color: css.color, fontFamily: css.fontFamily, fontSize: "16px" } },
    });
    card.mount("#card-element");
    // Stripe says what is wrong while the buyer types; no event means nothing to say.
    card.on("change", (e) => cardError(e && e.error ? e.error.message : ""));
    status("");
    $("pay-button").disabled = false;
  }

  function cardError(text) {
    $("card-error").textContent = text;
    show($("card-error"), Boolean(text));
  }

  async function pay(event) {
    event.preventDefault();
    if (paying || !card) return;
    paying = true;
    const c = saved().checkout;
    cardError("");
    busy($("pay-button"), "Paying…");
    status("Processing your payment. Please keep this page open.");
    let result;
    try {
      result = await stripe.confirmCardPayment(secret, {
        payment_method: { card, billing_details: { name: c.name, email: c.email } },
      });
    } catch {
      result = { error: { message: "We couldn't reach the payment service. Try again." } };
    }
    paying = false;
    const intent = result.paymentIntent || (result.error && result.error.payment_intent);
    // "processing": the bank decides later; the webhook will tell (like "succeeded").
    if (intent && (intent.status === "succeeded" || intent.status === "processing")) return settled();
    busy($("pay-button"), "");
    status("");
    cardError(`${(result.error && result.error.message) || "The payment didn't go through."} ` +
      "Check the details or try another card.");
    // Back to the card (Stripe's element can take focus; the emulator's cannot).
    if (typeof card.focus === "function") card.focus();
    else $("pay-button").focus();
    watchDecline(generation);
  }

  // Our server gives a declined order's tickets back to the pool once Stripe reports the
  // failure; say so rather than show a timer that no longer holds anything.
  async function watchDecline(gen) {
    const o = saved().order;
    for (let i = 0; i < 8 && gen === generation && !paying; i++) {
      await sleep(1000);
      const r = await api("GET", `/api/orders/${enc(o.id)}`, { bearer: o.token }).catch(() => null);
      if (gen !== generation || paying || !(r && r.status === 200)) continue;
      if (r.data.status !== "failed") continue;
      page.stopClock();
      show($("hold-timer"), false);
      $("hold-note").textContent = "The tickets went back on sale after the declined payment. " +
        "Paying now still gets them if any are left; if none are, you are refunded in full.";
      show($("hold-note"), true);
      return;
    }
  }

  // ---- the order and its tickets -----------------------------------------------------
  function settled() {
    const s = saved();
    s.order.paid = true;
    delete s.hold;
    delete s.checkout;
    store.save();
    page.stopClock();
    showOrder();
  }

  function orderSays(title, line = "") {
    if ($("order-title").textContent !== title) $("order-title").textContent = title;
    if ($("order-line").textContent !== line) $("order-line").textContent = line;
  }

  function showOrder() {
    const gen = ++generation;
    main.dataset.state = "ordered";
    page.stage("order");
    show($("order-view"), true);
    show($("order-check"), false);
    show($("order-restart"), false);
    orderSays("Confirming your order", "This takes a few seconds.");
    $("order-heading").focus();
    watch(gen);
  }

  async function watch(gen) {
    const o = saved().order;
    const until = Date.now() + WATCH_MS;
    let delay = 500;
    let last = null;
    while (gen === generation) {
      const r = await api("GET", `/api/orders/${enc(o.id)}`, { bearer: o.token }).catch(() => null);
      if (gen !== generation) return;
      if (r && r.status === 200) {
        last = r.data;
        if (last.status === "confirmed") return confirmed(last);
        if (last.status === "refunded") return refunded(last);
        // "failed" may be an earlier declined attempt's news: a paid order waits it out.
        if (last.status === "failed" && !o.paid) return failed();
      } else if (r && (r.status === 401 || r.status === 404)) {
        return lost();
      }
      if (Date.now() > until) return last && last.status === "failed" ? failed() : slow(last);
      await sleep(delay);
      delay = Math.min(delay * 1.6, 4000);
    }
  }

  function summary(order) {
    $("order-name").textContent = order.name || "";
    $("order-email").textContent = order.email;
    $("order-amount").textContent = order.amount ? money(order.amount) : "Free";
    $("order-id").textContent = order.order_id;
    show($("order-summary"), true);
  }

  function confirmed(order) {
    const count = order.tickets.length;
    orderSays("You're all set", `Your order is confirmed: ${count} ticket${count === 1 ? "" : "s"}. ` +
      "Show the QR code at the door, on this screen or printed.");
    summary(order);
    for (const url of objectUrls) URL.revokeObjectURL(url);
    objectUrls = [];
    const gen = generation;
    $("ticket-list").replaceChildren(...order.tickets.map((t, i) => ticket(t, i, count, gen)));
  }

  function ticket(t, index, count, gen) {
    const li = document.createElement("li");
    li.className = "ticket";
    li.dataset.ticketId = t.ticket_id;
    const heading = document.createElement("h3");
    heading.textContent = `${page.tierById(t.tier_id).name}: ticket ${index + 1} of ${count}`;
    const figure = document.createElement("div");
    figure.className = "qr";
    const img = document.createElement("img");
    img.width = img.height = 232;
    img.alt = `QR code for ticket ${index + 1} of ${count}`;
    img.hidden = true;
    const note = document.createElement("p");
    note.className = "qr-note";
    note.textContent = "Preparing the QR code…";
    figure.append(img, note);
    const details = document.createElement("details");
    details.open = true; // until the image arrives, the code itself is the ticket
    const summaryEl = document.createElement("summary");
    summaryEl.textContent = "Ticket code as text";
    const code = document.createElement("code");
    code.className = "qr-text";
    code.textContent = t.qr;
    details.append(summaryEl, code);
    li.append(heading, figure, details);
    loadQr(t.ticket_id, img, note, details, gen);
    return li;
  }

  // An <img> can't send the order token, so the image comes through fetch. Right after
  // payment the ticket may not have reached the database yet (404): try again shortly.
  async function loadQr(ticketId, img, note, details, gen) {
    const o = saved().order;
    for (let attempt = 0; gen === generation; attempt++) {
      const r = await fetch(`/api/tickets/${enc(ticketId)}/qr.png`, {
        headers: { Authorization: `Bearer ${o.token}` },
      }).catch(() => null);
      if (gen !== generation) return;
      if (r && r.ok) {
        const url = URL.createObjectURL(await r.blob());
        objectUrls.push(url);
        img.src = url;
        img.hidden = false;
        note.hidden = true;
        details.open = false;
        return;
      }
      const again = !r || r.status === 404 || r.status === 429 || r.status >= 500;
      if (!again || attempt >= QR_DELAYS.length) break;
      await sleep(QR_DELAYS[attempt] * 1000);
    }
    note.textContent = "The QR image isn't ready yet: reload this page in a minute. " +
      "The ticket code below is your ticket.";
  }

  function refunded(order) {
    orderSays("Your payment was refunded",
      `The tickets sold out before your payment came through, so the full ${money(order.amount)} ` +
      "goes back to your card. Refunds usually arrive within 5 to 10 business days.");
    summary(order);
    show($("order-restart"), true);
  }

  function failed() {
    orderSays("Your payment didn't go through",
      "No money was taken and the tickets were released. You can choose tickets again.");
    show($("order-restart"), true);
  }

  function slow(order) {
    if (order) summary(order);
    orderSays("Still confirming your payment",
      "This is taking longer than usual. Your payment is safe: keep this page, or come back " +
      "later on this device, and your tickets will be here.");
    show($("order-check"), true);
  }

  function lost() {
    orderSays("We can't find this order",
      "The link to your order on this device no longer works. If you were charged, contact " +
      "the organizer with the email you used.");
    show($("order-restart"), true);
  }

  // ---- start -------------------------------------------------------------------------
  function reset() {
    generation++;
    const s = saved();
    delete s.checkout;
    delete s.order;
    store.save();
    cardError("");
    status("");
    secret = "";
  }

  $("details").addEventListener("submit", submitDetails);
  for (const field of Object.values(fields)) {
    field.input.addEventListener("input", () => fieldError(field, "")); // fixed: say no more
  }
  $("pay").addEventListener("submit", pay);
  $("order-check").addEventListener("click", showOrder);
  $("order-restart").addEventListener("click", () => {
    reset();
    show($("order-view"), false);
    page.restart();
  });

  return { start, reset, showOrder, busy: () => paying };
};
