/* The order pages' service worker (scope /o/): the network first, so a refund shows as soon
   as there is a connection; the copy kept by the page when there is none. */
"use strict";

var CACHE = "onsale-orders-v1";

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var page = url.pathname.indexOf("/o/") === 0 && request.mode === "navigate";
  var asset = url.pathname.indexOf("/static/") === 0;
  if (!page && !asset) return;
  event.respondWith(
    fetch(request)
      .then(function (response) {
        // Only a good answer replaces the kept copy (never a 503 or an error page).
        if (response.ok) {
          var copy = response.clone();
          caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
          return response;
        }
        // The server is struggling (a 503 at the door): the kept copy is better than that.
        if (response.status >= 500) {
          return caches.match(request).then(function (kept) { return kept || response; });
        }
        return response;
      })
      .catch(function () {
        return caches.match(request).then(function (kept) {
          return kept || Response.error();
        });
      })
  );
});
