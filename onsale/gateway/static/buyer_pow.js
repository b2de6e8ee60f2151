// The bot tax: before a new place in line, the ALTCHA widget (vendor/altcha.min.js, loaded
// only when the event asks for it) solves the event's proof-of-work in Web Workers, with no
// click; this says how long it is taking, for slow phones. buyer.js asks `solve()` for a
// payload and sends it as X-Altcha with the join. No framework, no build step.
(() => {
  "use strict";
  window.onsalePow = ({ $, show }) => {
    const main = $("main");
    const box = $("pow");
    let asked = main.dataset.pow === "1"; // the page says so; a 403 pow_* says so too
    let widget = null;
    let loading = null;
    let ticker = 0;

    // The widget's module, and its SHA-256 worker from our own origin (the page's CSP
    // allows no blob: workers, which the widget's all-in-one bundle would make).
    function load() {
      if (!loading) {
        loading = new Promise((resolve, reject) => {
          const script = document.createElement("script");
          script.type = "module";
          script.src = main.dataset.altchaJs;
          script.onload = resolve;
          script.onerror = () => { loading = null; reject(new Error("widget did not load")); };
          document.head.append(script);
        }).then(() => customElements.whenDefined("altcha-widget")).then(() => {
          const worker = main.dataset.altchaWorker;
          globalThis.$altcha.algorithms.set("SHA-256", () => new Worker(worker));
        });
      }
      return loading;
    }

    function progress(started) {
      const seconds = Math.floor((Date.now() - started) / 1000);
      $("pow-time").textContent = seconds < 3 ? "" :
        `${seconds} s so far: older phones can take a little longer.`;
    }

    function finish() {
      clearInterval(ticker);
      show(box, false);
      main.dataset.pow = asked ? "1" : "0";
    }

    // A fresh solution for one join (each is spent by it), or an error to retry later.
    async function solve() {
      await load();
      if (!widget) {
        widget = document.createElement("altcha-widget");
        widget.setAttribute("challenge", main.dataset.powChallenge);
        widget.setAttribute("auto", "off");
        widget.setAttribute("display", "invisible");
        widget.setAttribute("name", "altcha");
        $("pow-widget").append(widget);
        await new Promise((resolve) => {
          if (typeof widget.verify === "function") resolve();
          else widget.addEventListener("load", resolve, { once: true });
        });
      } else {
        widget.reset();
      }
      const started = Date.now();
      main.dataset.pow = "solving";
      show(box, true);
      progress(started);
      clearInterval(ticker);
      ticker = setInterval(() => progress(started), 1000);
      let verified, failed;
      try {
        return await new Promise((resolve, reject) => {
          verified = (ev) => resolve(ev.detail.payload);
          failed = (ev) => {
            const state = ev.detail && ev.detail.state;
            if (state === "error" || state === "expired") reject(new Error(state));
          };
          widget.addEventListener("verified", verified);
          widget.addEventListener("statechange", failed);
          widget.verify();
        });
      } finally {
        widget.removeEventListener("verified", verified);
        widget.removeEventListener("statechange", failed);
        finish();
      }
    }

    return {
      wanted: () => asked,
      // The server refused a join for want of a (valid) proof-of-work: solve before the next.
      require: () => { asked = true; },
      solve,
    };
  };
})();
