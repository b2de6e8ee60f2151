/* The order page: PDF download with the order token, and keeping the page on this device
   (a service worker) so it opens at the door without a connection. */
"use strict";

(function () {
  var CACHE = "onsale-orders-v1";
  var token = new URLSearchParams(location.search).get("t") || "";

  function say(el, text) {
    if (el) el.textContent = text;
  }

  // The PDF needs the token as a bearer header: fetched, then saved from a blob URL.
  var pdf = document.getElementById("pdf-button");
  if (pdf) {
    pdf.addEventListener("click", function () {
      var result = document.getElementById("pdf-result");
      var orderId = pdf.dataset.orderId;
      pdf.disabled = true;
      say(result, "Preparing your PDF…");
      fetch("/api/orders/" + encodeURIComponent(orderId) + "/tickets.pdf", {
        headers: { Authorization: "Bearer " + token },
      })
        .then(function (r) {
          if (!r.ok) throw new Error(String(r.status));
          return r.blob();
        })
        .then(function (blob) {
          var url = URL.createObjectURL(blob);
          var a = document.createElement("a");
          a.href = url;
          a.download = "tickets-" + orderId + ".pdf";
          document.body.appendChild(a);
          a.click();
          a.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
          say(result, "");
        })
        .catch(function () {
          say(result, navigator.onLine === false
            ? "You're offline: the PDF can be downloaded once you're connected."
            : "The PDF could not be made right now. Try again in a minute.");
        })
        .finally(function () { pdf.disabled = false; });
    });
  }

  // Keep this page (its HTML carries the QR codes) and its assets for offline use.
  if (token && document.getElementById("order-tickets") && "serviceWorker" in navigator) {
    navigator.serviceWorker.register("/o/sw.js", { scope: "/o/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function () { return caches.open(CACHE); })
      .then(function (cache) {
        var urls = [location.href];
        document.querySelectorAll("link[rel=stylesheet], script[src]").forEach(function (el) {
          urls.push(el.href || el.src);
        });
        return cache.addAll(urls);
      })
      .then(function () {
        document.documentElement.dataset.offline = "ready";
        var note = document.getElementById("offline-note");
        if (note) note.hidden = false;
      })
      .catch(function () { /* still works while this tab stays open */ });
  }
})();
