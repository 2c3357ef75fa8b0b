// The app shell for offline use: cached at install, served cache-first.
// Only the app's own files under its scope are handled; sync traffic and
// enrollment always go to the network and are never cached.
const VERSION = "__VERSION__";
const FILES = __FILES__;
const CACHE = `fieldvault-app-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((key) => key.startsWith("fieldvault-app-") && key !== CACHE)
      .map((key) => caches.delete(key))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const scope = new URL(self.registration.scope);
  if (event.request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  const relative = url.pathname.slice(scope.pathname.length);
  if (relative.includes("/") || !FILES.includes(relative || "./")) return;
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const hit = await cache.match(relative ? relative : "./");
    return hit ?? fetch(event.request);
  }));
});
