// The presale's access code field on the buyer's page (templates/presale.html): shown while
// a code can still help (the visitor waits for the general sale, before it opens), hidden
// once the visitor is in the presale line or the general sale has opened. buyer.js makes the
// join (`join`) and tells this of every answer (`update`). No framework, no build step.
(() => {
  "use strict";
  window.onsalePresale = ({ $, show, problem, join }) => {
    const box = $("presale");
    if (!box) return { update() {} };
    const form = $("presale-form");
    const input = $("access-code");
    const error = $("access-code-error");
    const button = $("presale-button");
    // "from <a time already past>" reads as a mistake once the presale is under way.
    const when = $("presale-when");
    if (when && Date.parse(box.dataset.presaleAt) <= Date.now()) {
      when.textContent = "The presale is on: access code holders are being let in now,";
    }

    function fail(text) {
      error.textContent = text;
      show(error, Boolean(text));
      input.setAttribute("aria-invalid", text ? "true" : "false");
    }

    // Only a visitor still waiting for the general sale's opening can use a code; the
    // explanation stays while anyone is waiting in a pre-queue.
    function update(place) {
      const inPresale = place.line === "presale";
      const waitsForGeneral = place.state === "prequeue" && !inPresale;
      show(form, waitsForGeneral);
      show($("presale-ok"), inPresale && place.state !== "admitted");
      show(box, place.state === "prequeue" || inPresale);
    }

    async function submit(event) {
      event.preventDefault();
      const code = input.value.trim();
      if (!code) {
        fail("Enter the access code you were sent.");
        return input.focus();
      }
      fail("");
      button.disabled = true;
      button.textContent = "Checking…";
      const r = await join(code);
      button.disabled = false;
      button.textContent = "Join the presale";
      if (r && r.status === 200) {
        input.value = "";
        return;
      }
      if (r && r.data && r.data.code === "access_code_invalid") {
        fail("This access code isn't valid for this presale, or it has been used up. " +
          "Check it and try again; you keep your place for the general sale meanwhile.");
      } else {
        fail(problem(r));
      }
      input.focus();
    }

    form.addEventListener("submit", submit);
    return { update };
  };
})();
