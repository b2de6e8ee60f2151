// The promo code field at the hold step of the buyer's page (templates/event.html): its code
// goes with the hold (`code`); a refused code (422 promo_invalid) is said at the field, which
// takes the focus (`refused`); a hold's discount is shown with the held tickets
// (`showDiscount`). buyer.js calls these. No framework, no build step.
(() => {
  "use strict";
  window.onsalePromo = ({ $, show, money }) => {
    const input = $("promo-code");
    const error = $("promo-error");
    const line = $("hold-discount");
    if (!input) return { code: () => "", refused: () => false, showDiscount() {}, clear() {} };

    function fail(text) {
      error.textContent = text;
      show(error, Boolean(text));
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }

    // What to send: the code as typed (any case), or "" for none.
    function code() {
      fail("");
      return input.value.trim();
    }

    // True when the answer was about the code: said at the field, the tickets untouched.
    function refused(r) {
      if (!r || r.status !== 422 || !r.data || r.data.code !== "promo_invalid") return false;
      fail(`${r.data.detail || "This promo code can't be used."} Check it, or remove it to hold without it.`);
      input.focus();
      return true;
    }

    function showDiscount(hold) {
      const off = hold.discount || 0;
      line.textContent = off > 0 ? `Promo code ${hold.promo_code}: −${money(off)}` : "";
      show(line, off > 0);
    }

    function clear() {
      fail("");
    }

    input.addEventListener("input", () => {
      if (!error.hidden) fail("");
    });
    return { code, refused, showDiscount, clear };
  };
})();
