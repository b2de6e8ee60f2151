/* The door scanner's service worker (scope /scan): the page and its scripts come from the
   network when it answers, else from the copy scan.js put in the cache, so the scanner opens
   with no signal at all. The API is never cached here: the page keeps its data in IndexedDB. */
"use strict";

var CACHE = "onsale-scan-v1";
//: A navigation that takes longer than this is answered from the cache (a dying link).
var NETWORK_MS = 3000;

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

function kept(request, fallback) {
  var page = request.mode === "navigate";
  return caches.match(page ? "/scan" : request, { ignoreSearch: page }).then(function (hit) {
    return hit || fallback || Response.error();
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var page = request.mode === "navigate" && url.pathname === "/scan";
  var asset = url.pathname.indexOf("/static/") === 0;
  if (!page && !asset) return;
  event.respondWith(new Promise(function (resolve) {
    var done = false;
    var timer = setTimeout(function () {
      done = true;
      resolve(kept(request));
    }, NETWORK_MS);
    fetch(request).then(function (response) {
      if (done) return;
      clearTimeout(timer);
      done = true;
      // A good answer replaces the kept copy; a sign-in redirect or a 5xx never does.
      if (response.ok && !response.redirected && response.type === "basic") {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(page ? "/scan" : request, copy); });
        resolve(response);
      } else if (response.status >= 500) {
        resolve(kept(request, response));
      } else {
        resolve(response);
      }
    }).catch(function () {
      if (done) return;
      clearTimeout(timer);
      done = true;
      resolve(kept(request));
    });
  }));
});
