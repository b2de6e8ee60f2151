// The door scanner (/scan): pick the event and the gate, then the camera scans on its own.
// Online, the server decides (POST /api/checkin: first scan wins). Offline, or when the
// server is slow, this page decides from what it downloaded into IndexedDB (the event's
// manifest and the public keys): the Ed25519 signature is checked with WebCrypto, then the
// ticket's status in the manifest and this device's own scans; the scan is queued and sent
// to /api/checkin/sync when the network is back, and what another gate did first shows as
// a conflict. No framework, no build step; jsQR (vendored) decodes where the browser has no
// BarcodeDetector.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const DB_NAME = "onsale-scan";
  const CACHE = "onsale-scan-v1";
  //: An online answer slower than this is not waited for: the page decides itself.
  const ONLINE_TIMEOUT_MS = 800;
  //: A code held in view is answered once; gone this long, it is a new scan.
  const SAME_CODE_MS = 1500;
  const FRAME_MS = 60;
  const SHOW_MS = { ok: 1500, offline: 2000, no: 3500, "offline-no": 3500 };

  const me = { user: null, csrf: "" };
  let event = null; // {event_id, title, tiers, keys, generated_at, tickets: Map}
  let keys = [];
  let gate = localStorage.getItem("onsale-scan:gate") || "";
  let device = localStorage.getItem("onsale-scan:device");
  if (!device) {
    device = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
    localStorage.setItem("onsale-scan:device", device);
  }
  const timings = [];
  window.onsaleScan = { timings, decide: (code) => handle(code, performance.now(), "test") };

  // ---- IndexedDB: manifests (one record per event) and this device's scans -------------
  const dbp = new Promise((resolve, reject) => {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => {
      const db = open.result;
      db.createObjectStore("manifests", { keyPath: "event_id" });
      // One record per ticket this device let in: key "{event}:{ticket}".
      db.createObjectStore("admitted", { keyPath: "key" });
      // Scans decided here, waiting for /api/checkin/sync.
      db.createObjectStore("queue", { keyPath: "id", autoIncrement: true });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });

  function store(name, mode, work) {
    return dbp.then((db) => new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const request = work(tx.objectStore(name));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    }));
  }
  const idbGet = (name, key) => store(name, "readonly", (s) => s.get(key));
  const idbAll = (name) => store(name, "readonly", (s) => s.getAll());
  const idbPut = (name, value) => store(name, "readwrite", (s) => s.put(value));
  const idbDelete = (name, key) => store(name, "readwrite", (s) => s.delete(key));

  // ---- the API ---------------------------------------------------------------------------
  async function api(method, path, data, timeoutMs) {
    const headers = { Accept: "application/json" };
    if (data !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && me.csrf) headers["X-CSRF-Token"] = me.csrf;
    const abort = new AbortController();
    const timer = timeoutMs ? setTimeout(() => abort.abort(), timeoutMs) : 0;
    try {
      const res = await fetch(path, {
        method, headers, credentials: "same-origin", cache: "no-store", signal: abort.signal,
        body: data === undefined ? undefined : JSON.stringify(data),
      });
      const parsed = res.status === 204 ? null : await res.json().catch(() => null);
      return { status: res.status, data: parsed || {} };
    } catch {
      return { status: 0, data: {} }; // offline, or too slow
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- on screen -------------------------------------------------------------------------
  function showError(text) {
    const el = $("error");
    el.textContent = text || "";
    el.hidden = !text;
  }
  const say = (id, text) => { const el = $(id); if (el.textContent !== text) el.textContent = text; };
  const time = (iso) => iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
  const tierName = (id) => (event && event.tiers[id]) || "Ticket";

  let online = navigator.onLine;
  function setOnline(value) {
    online = value;
    const net = $("net");
    net.dataset.net = value ? "online" : "offline";
    say("net", value ? "Online" : "Offline: deciding here");
    if (value) syncSoon(0);
  }

  // ---- the answer: colour, words, a beep or a buzz ---------------------------------------
  let audio = null;
  // Browsers start sound only after a tap: the first tap (camera, a typed code) opens it.
  function unlockAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch { audio = null; }
  }

  function beep(kind) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const notes = kind === "ok" ? [[880, 0.12]] : kind === "offline" ? [[660, 0.1], [660, 0.1]] : [[220, 0.45]];
      let at = audio.currentTime;
      for (const [freq, length] of notes) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = kind === "ok" || kind === "offline" ? "sine" : "square";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.25, at);
        gain.gain.exponentialRampToValueAtTime(0.001, at + length);
        osc.connect(gain).connect(audio.destination);
        osc.start(at);
        osc.stop(at + length);
        at += length + 0.06;
      }
    } catch { /* no sound: the colour and the words still say it */ }
    if (navigator.vibrate) navigator.vibrate(kind === "ok" ? 80 : kind === "offline" ? [60, 60, 60] : [250, 100, 250]);
  }

  let hideTimer = 0;
  function answer(kind, head, name, detail, started) {
    const el = $("answer");
    el.dataset.kind = kind;
    $("answer-head").textContent = head;
    $("answer-name").textContent = name || "";
    $("answer-detail").textContent = detail || "";
    el.hidden = false;
    beep(kind);
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => { el.hidden = true; }, SHOW_MS[kind] || 2000);
    const item = document.createElement("li");
    item.dataset.kind = kind.startsWith("offline") && kind !== "offline-no" ? "offline" : kind === "offline-no" ? "no" : kind;
    item.textContent = `${new Date().toLocaleTimeString()} · ${head}${name ? ` · ${name}` : ""}${detail ? ` · ${detail}` : ""}`;
    const recent = $("recent");
    recent.prepend(item);
    while (recent.children.length > 8) recent.lastChild.remove();
    // Frame to answer: from the start of decoding to the answer painted.
    const fromCamera = source === "camera";
    requestAnimationFrame(() => {
      const ms = performance.now() - started;
      if (!fromCamera) return; // typed codes: no frame to time
      timings.push(ms);
      el.dataset.ms = ms.toFixed(1);
      el.dataset.count = String(timings.length);
      el.dataset.timings = timings.map((t) => t.toFixed(1)).join(" "); // for tests and the curious
    });
  }

  // ---- deciding here: signature, manifest, this device's scans ---------------------------
  const PAYLOAD = /^ticket:([0-9a-fA-F-]{36}):v1:([A-Za-z0-9_-]{86})$/;

  function b64url(text) {
    const plain = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(plain + "===".slice((plain.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function importKeys(jwks) {
    const out = [];
    for (const jwk of jwks || []) {
      if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.x) continue;
      try {
        out.push(await crypto.subtle.importKey("raw", b64url(jwk.x), { name: "Ed25519" }, false, ["verify"]));
      } catch { /* a browser without Ed25519 in WebCrypto: see genuine() */ }
    }
    return out;
  }

  // true: signed for this event by a published key; false: not; null: cannot tell here.
  async function genuine(ticketId, signature) {
    if (!keys.length) return null;
    const message = new TextEncoder().encode(`${ticketId}:${event.event_id}:v1`);
    for (const key of keys) {
      try {
        if (await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message)) return true;
      } catch { /* try the next key */ }
    }
    return false;
  }

  async function decideHere(code, started, why) {
    const match = PAYLOAD.exec(code.trim());
    if (!match) return answer("offline-no", "Not a ticket", "", "This code is not an onsale ticket.", started);
    const ticketId = match[1].toLowerCase();
    const ok = await genuine(ticketId, b64url(match[2]));
    if (ok === false) {
      await queue(code, ticketId, "refused");
      return answer("offline-no", "Forged", "", "The signature does not match this event: a fake, or another event's ticket.", started);
    }
    const row = event.tickets.get(ticketId);
    const name = row ? row.attendee_name : "";
    if (ok === null && !row) {
      // No way to check the signature here, and not in the list: it could be made up.
      await queue(code, ticketId, "refused");
      return answer("offline-no", "Cannot check", "", "Not in the downloaded list, and this browser cannot verify signatures offline.", started);
    }
    if (row && (row.status === "refunded" || row.status === "cancelled")) {
      await queue(code, ticketId, "refused");
      return answer("offline-no", "Not valid", name, `This ticket was ${row.status}: do not let it in.`, started);
    }
    const mine = await idbGet("admitted", `${event.event_id}:${ticketId}`);
    const at = mine ? mine.at : row && row.checked_in_at;
    if (at) {
      const where = mine ? mine.gate : row.checked_in_gate;
      await queue(code, ticketId, "refused");
      return answer("offline-no", "Already checked in", name, `At ${time(at)}${where ? ` at ${where}` : ""}.`, started);
    }
    const now = new Date().toISOString();
    await idbPut("admitted", { key: `${event.event_id}:${ticketId}`, at: now, gate, offline: true });
    await queue(code, ticketId, "admitted", name);
    const unsure = ok === null ? " The signature could not be checked on this device." : "";
    const listed = row ? `${tierName(row.tier_id)}.` : "Not in the downloaded list (bought since?).";
    answer("offline", "Let in (offline)", name, `${listed} ${why}${unsure}`, started);
  }

  async function queue(code, ticketId, local, name) {
    await idbPut("queue", {
      event_id: event.event_id, qr: code, ticket_id: ticketId, local, name: name || "",
      scanned_at: new Date().toISOString(), gate, device,
    });
    showQueue();
  }

  // ---- deciding: the server first -------------------------------------------------------
  let busy = false;
  let source = ""; // what the scan being decided came from: camera, manual or test
  //: After an online scan got no answer, scans are decided here for a while (then the
  //: server is tried again), so that a dead link costs one slow answer, not every one.
  const QUIET_MS = 10000;
  let quietUntil = 0;
  //: Scans are decided one at a time, in order. A camera frame that comes while one is being
  //: decided is dropped (the next frame shows the code again); a typed code never is.
  let turn = Promise.resolve();
  let waiting = 0; // scans queued or being decided
  function handle(code, started, from) {
    if (!event || (busy && from === "camera")) return turn;
    waiting += 1;
    busy = true;
    const mine = turn.then(async () => {
      source = from;
      try {
        await decide(code.trim(), started);
      } finally {
        waiting -= 1;
        busy = waiting > 0;
      }
    });
    turn = mine.catch(() => {});
    return mine;
  }

  async function decide(code, started) {
    if (!online || Date.now() < quietUntil) return decideHere(code, started, "Decided on this device; it syncs when back online.");
    const body = { event_id: event.event_id, qr: code, gate, device };
    if (me.user && me.user.email) body.scanner = me.user.email;
    const r = await api("POST", "/api/checkin", body, ONLINE_TIMEOUT_MS);
    const d = r.data;
    if (r.status === 200) {
      await idbPut("admitted", { key: `${event.event_id}:${d.ticket_id}`, at: d.checked_in_at, gate, offline: false });
      return answer("ok", "Welcome", d.attendee_name, tierName(d.tier_id), started);
    }
    if (r.status === 409 && d.code === "already_checked_in") {
      const where = d.gate ? ` at ${d.gate}` : d.checked_in_by ? ` by ${d.checked_in_by}` : "";
      return answer("no", "Already checked in", "", `At ${time(d.checked_in_at)}${where}.`, started);
    }
    if (r.status === 409 && d.code === "ticket_not_valid") {
      return answer("no", "Not valid", "", `This ticket was ${d.status || "refunded"}: do not let it in.`, started);
    }
    if (r.status === 403 && d.code === "wrong_event") {
      return answer("no", "Wrong event", "", "A real ticket, but for another event.", started);
    }
    if (r.status === 422 && d.code === "invalid_ticket") {
      return answer("no", "Forged", "", "Not a genuine ticket: the signature does not verify.", started);
    }
    if (r.status === 422 || r.status === 400) {
      return answer("no", "Not a ticket", "", d.detail || "This code is not an onsale ticket.", started);
    }
    if (r.status === 404 && d.code === "ticket_not_found") {
      return decideHere(code, started, "Genuine, but the server has not recorded it yet; decided on this device.");
    }
    if (r.status === 401) showError("Your sign-in has ended: scans are decided here until you sign in again.");
    if (r.status === 403) return answer("no", "Not allowed", "", d.detail || "You are not on this event's staff.", started);
    // No network, too slow, or the server is struggling: decide here rather than wait.
    if (r.status === 0) {
      if (!navigator.onLine) setOnline(false);
      else quietUntil = Date.now() + QUIET_MS; // the server did not answer: stop waiting on it a while
    }
    return decideHere(code, started, r.status === 0 ? "No answer from the server; decided on this device." : "The server is busy; decided on this device.");
  }

  // ---- sync ------------------------------------------------------------------------------
  let syncTimer = 0;
  let syncing = false;
  function syncSoon(ms) {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(sync, ms);
  }

  async function showQueue() {
    const waiting = (await idbAll("queue")).length;
    say("sync-state", waiting ? `${waiting} scan${waiting === 1 ? "" : "s"} made offline, waiting to sync.` : "None waiting.");
    $("sync-now").hidden = !waiting;
    return waiting;
  }

  function conflict(text) {
    $("conflicts-title").hidden = false;
    const li = document.createElement("li");
    li.textContent = text;
    $("conflicts").prepend(li);
  }

  async function sync() {
    if (syncing || !online) return;
    const items = (await idbAll("queue")).slice(0, 1000);
    if (!items.length) return showQueue();
    syncing = true;
    try {
      if (!me.user) await whoAmI(); // opened offline: the session's CSRF token first
      const byEvent = new Map();
      for (const item of items) {
        if (!byEvent.has(item.event_id)) byEvent.set(item.event_id, []);
        byEvent.get(item.event_id).push(item);
      }
      for (const [eventId, group] of byEvent) {
        const scans = group.map((i) => ({ qr: i.qr, scanned_at: i.scanned_at, gate: i.gate || null, device: i.device, scanner: (me.user && me.user.email) || null }));
        const r = await api("POST", "/api/checkin/sync", { event_id: eventId, scans });
        if (r.status === 0) { setOnline(false); break; }
        if (r.status !== 200) { showError(`Sync failed: ${r.data.detail || `HTTP ${r.status}`}. It is tried again.`); continue; }
        for (let i = 0; i < group.length; i++) {
          const item = group[i];
          const result = r.data.results[i] || {};
          if (result.result === "not_found") continue; // not recorded yet: next time
          await idbDelete("queue", item.id);
          if (item.local !== "admitted") continue;
          const who = item.name || `ticket ${String(item.ticket_id).slice(0, 8)}`;
          if (result.result === "already_checked_in") {
            const where = result.gate || result.checked_in_by || "another gate";
            conflict(`${who}: let in here (${item.gate || "this gate"}) offline at ${time(item.scanned_at)}, but ${where} checked this ticket in first, at ${time(result.checked_in_at)}.`);
          } else if (result.result === "not_valid") {
            conflict(`${who}: let in offline at ${time(item.scanned_at)}, but the ticket was refunded or cancelled.`);
          } else if (result.result !== "checked_in") {
            conflict(`${who}: let in offline at ${time(item.scanned_at)}, but the server says ${result.result}.`);
          }
        }
      }
    } finally {
      syncing = false;
    }
    const left = await showQueue();
    if (left && online) syncSoon(10000);
    refreshCounts();
  }

  // ---- counts ----------------------------------------------------------------------------
  async function refreshCounts() {
    if (!event) return;
    if (online) {
      const r = await api("GET", `/api/events/${event.event_id}/checkin/stats`, undefined, 3000);
      if (r.status === 200) {
        say("n-in", r.data.checked_in.toLocaleString());
        say("n-expected", r.data.expected.toLocaleString());
        say("n-rate", r.data.rate_per_minute.toLocaleString());
        say("counts-note", `Live, at ${time(r.data.at)}.`);
        return;
      }
    }
    // Offline: what the list said when it was downloaded, plus this device's own scans.
    const mine = (await idbAll("admitted")).filter((a) => a.key.startsWith(`${event.event_id}:`));
    let checked = 0;
    let expected = 0;
    const extra = new Set(mine.map((a) => a.key.slice(event.event_id.length + 1)));
    for (const [id, t] of event.tickets) {
      if (t.status === "valid" || t.status === "used") expected++;
      if (t.status === "used" || extra.has(id)) checked++;
      extra.delete(id);
    }
    say("n-in", (checked + extra.size).toLocaleString());
    say("n-expected", expected.toLocaleString());
    say("n-rate", "–");
    say("counts-note", "Offline: from the downloaded list and this device's scans.");
  }

  // ---- the event and its manifest ---------------------------------------------------------
  async function download(eventId) {
    const [m, ev] = await Promise.all([
      api("GET", `/api/events/${eventId}/checkin/manifest`),
      api("GET", `/api/events/${eventId}`),
    ]);
    if (m.status !== 200) return m;
    const tiers = {};
    for (const t of (ev.status === 200 && ev.data.tiers) || []) tiers[t.id] = t.name;
    const record = {
      event_id: eventId, title: ev.status === 200 ? ev.data.title : "", tiers,
      keys: m.data.keys, generated_at: m.data.generated_at, tickets: m.data.tickets,
    };
    await idbPut("manifests", record);
    return { status: 200, data: record };
  }

  async function use(record) {
    keys = await importKeys(record.keys);
    event = { ...record, tickets: new Map(record.tickets.map((t) => [t.ticket_id, t])) };
    say("door-title", record.title || "Door");
    say("door-gate", gate ? `Gate: ${gate}` : "No gate name");
    const n = record.tickets.length;
    say("manifest-state", `Ticket list: ${n.toLocaleString()} ticket${n === 1 ? "" : "s"}, downloaded ${new Date(record.generated_at).toLocaleString()}${keys.length ? "" : " (this browser cannot check signatures offline)"}.`);
    document.body.dataset.manifest = String(n);
  }

  async function open(eventId) {
    showError("");
    let record = null;
    if (online) {
      const r = await download(eventId);
      if (r.status === 200) record = r.data;
      else if (r.status !== 0) return showError(r.data.detail || `Could not download the ticket list (HTTP ${r.status}).`);
    }
    record = record || (await idbGet("manifests", eventId));
    if (!record) return showError("No connection, and this device has no ticket list for that event yet.");
    await use(record);
    localStorage.setItem("onsale-scan:event", eventId);
    $("setup").hidden = true;
    $("door").hidden = false;
    document.body.dataset.phase = "door";
    $("door-title").focus();
    refreshCounts();
    showQueue();
    syncSoon(0);
  }

  async function setup() {
    $("setup").hidden = false;
    $("door").hidden = true;
    document.body.dataset.phase = "setup";
    const select = $("event");
    select.textContent = "";
    let events = [];
    const r = online ? await api("GET", "/api/checkin/events") : { status: 0 };
    if (r.status === 200) events = r.data.map((e) => ({ id: e.id, title: e.title, starts_at: e.starts_at }));
    if (r.status === 401) return toLogin();
    // Offline: the events this device already has a list for.
    if (!events.length) events = (await idbAll("manifests")).map((m) => ({ id: m.event_id, title: m.title || m.event_id }));
    for (const e of events) {
      const option = document.createElement("option");
      option.value = e.id;
      option.textContent = e.starts_at ? `${e.title} · ${new Date(e.starts_at).toLocaleDateString()}` : e.title;
      select.append(option);
    }
    const last = localStorage.getItem("onsale-scan:event");
    if (last && events.some((e) => e.id === last)) select.value = last;
    if (!events.length) showError("There are no events you can check tickets in at. Ask an organizer to add you to an event's staff.");
    $("gate").value = gate;
  }

  function toLogin() {
    location.replace("/login?next=%2Fscan");
  }

  // ---- the camera --------------------------------------------------------------------------
  let stream = null;
  let detector = null;
  let canvas = null;
  let last = { code: "", at: 0 };

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return say("camera-state", "This browser has no camera access: type codes below.");
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (err) {
      return say("camera-state", `No camera (${err.name}): allow it in the browser, or type codes below.`);
    }
    const video = $("video");
    video.srcObject = stream;
    await video.play().catch(() => {});
    if ("BarcodeDetector" in window) {
      try {
        const formats = await window.BarcodeDetector.getSupportedFormats();
        if (formats.includes("qr_code")) detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      } catch { detector = null; }
    }
    say("camera-state", detector ? "Scanning (built-in detector)" : "Scanning");
    document.body.dataset.camera = "on";
    say("camera", "Stop camera");
    setTimeout(frame, FRAME_MS);
  }

  function stopCamera() {
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    $("video").srcObject = null;
    document.body.dataset.camera = "off";
    say("camera-state", "Camera off");
    say("camera", "Start camera");
  }

  async function decodeFrame(video) {
    if (detector) {
      const found = await detector.detect(video);
      return found.length ? found[0].rawValue : "";
    }
    if (!window.jsQR) return "";
    const scale = Math.min(1, 640 / video.videoWidth);
    const w = Math.round(video.videoWidth * scale);
    const h = Math.round(video.videoHeight * scale);
    canvas = canvas || document.createElement("canvas");
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, w, h);
    const found = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "dontInvert" });
    return found ? found.data : "";
  }

  async function frame() {
    if (!stream) return;
    const video = $("video");
    if (video.readyState >= 2 && video.videoWidth && !busy && event) {
      const started = performance.now();
      let code = "";
      try { code = await decodeFrame(video); } catch { code = ""; }
      const now = Date.now();
      if (code) {
        const same = code === last.code && now - last.at < SAME_CODE_MS;
        last = { code, at: now };
        if (!same) await handle(code, started, "camera");
      }
    }
    setTimeout(frame, FRAME_MS);
  }

  // ---- the app shell kept for offline use ----------------------------------------------------
  async function keepShell() {
    if (!("serviceWorker" in navigator)) return;
    try {
      await navigator.serviceWorker.register("/scan/sw.js", { scope: "/scan" });
      const cache = await caches.open(CACHE);
      const assets = (document.body.dataset.assets || "").split(" ").filter(Boolean);
      await cache.addAll(["/scan", ...assets]);
      document.body.dataset.shell = "kept";
    } catch { /* no offline copy of the page: scanning still works while it stays open */ }
  }

  // ---- start ---------------------------------------------------------------------------------
  // The signed-in person and the session's CSRF token (a page opened offline asks later).
  async function whoAmI() {
    const r = await api("GET", "/api/me");
    if (r.status === 200) { me.user = r.data.user; me.csrf = r.data.csrf_token || ""; }
    return r.status;
  }

  async function start() {
    window.addEventListener("online", () => setOnline(true));
    window.addEventListener("offline", () => setOnline(false));
    setOnline(navigator.onLine);
    $("answer").addEventListener("click", () => { $("answer").hidden = true; });
    $("setup-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("gate").value.trim();
      if (!value) { showError("Name this gate (for example North gate): every scan says where it was made."); return $("gate").focus(); }
      if (!$("event").value) return showError("Choose an event.");
      gate = value.slice(0, 60);
      localStorage.setItem("onsale-scan:gate", gate);
      open($("event").value);
    });
    $("change").addEventListener("click", () => { stopCamera(); setup(); });
    $("camera").addEventListener("click", () => { unlockAudio(); return stream ? stopCamera() : startCamera(); });
    $("manual").addEventListener("submit", (e) => {
      e.preventDefault();
      const code = $("manual-code").value.trim();
      unlockAudio();
      if (code) {
        $("manual-code").value = ""; // ready for the next code while this one is decided
        handle(code, performance.now(), "manual");
      }
    });
    $("sync-now").addEventListener("click", () => syncSoon(0));
    $("refresh").addEventListener("click", () => event && open(event.event_id));
    $("sign-out").addEventListener("click", async () => {
      await api("POST", "/api/auth/logout");
      location.assign("/login?next=%2Fscan");
    });

    if (online && (await whoAmI()) === 401) {
      // A bearer token (a kiosk's header) is not a session: the event list says whether it works.
      const probe = await api("GET", "/api/checkin/events");
      if (probe.status === 401) return toLogin();
    }
    say("who", me.user ? `Signed in as ${me.user.email}.` : online ? "Signed in with an API token." : "Offline.");
    keepShell();
    setInterval(refreshCounts, 5000);
    setInterval(() => { if (online) syncSoon(0); }, 15000);
    const lastEvent = localStorage.getItem("onsale-scan:event");
    if (lastEvent && gate && new URLSearchParams(location.search).get("setup") === null) {
      await setup();
      if ($("event").value === lastEvent) return open(lastEvent);
    }
    return setup();
  }

  start();
})();
