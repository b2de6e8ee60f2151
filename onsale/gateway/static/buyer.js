// The buyer's page: join the waiting room, wait (polling only as often as the server
// says), then choose tickets and hold them. No framework, no build step.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const main = $("main");
  const eventId = main.dataset.eventId;
  const queuePath = `/api/events/${encodeURIComponent(eventId)}/queue`;
  const storageKey = `onsale:${eventId}`;

  // Money arrives in minor units; the server says how many digits the currency has.
  const digits = Number(main.dataset.exponent);
  const currencyFormat = new Intl.NumberFormat(undefined, {
    style: "currency", currency: main.dataset.currency,
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
  const money = (minor) => currencyFormat.format(minor / 10 ** digits);

  const tiers = [...document.querySelectorAll(".tier[data-tier-id]")].map((li) => ({
    id: li.dataset.tierId, name: li.dataset.name, price: Number(li.dataset.price),
    select: li.querySelector("select"), picker: li.querySelector(".tier-qty"),
  }));

  let saved = load(); // {token, first, hold}: survives a reload, so the place does too
  let admission = null; // the admission token: in memory only, a rejoin gives it again
  let state = "loading";
  let pollTimer = 0;
  let clockTimer = 0;
  let failures = 0;

  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey)) || {}; } catch { return {}; }
  }
  function save() {
    try { localStorage.setItem(storageKey, JSON.stringify(saved)); } catch { /* private mode */ }
  }

  async function api(method, path, { token, bearer, body } = {}) {
    const headers = { Accept: "application/json" };
    if (token) headers["X-Visitor-Token"] = token;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    return { status: res.status, data, retryAfter: Number(res.headers.get("Retry-After")) || 0 };
  }

  // ---- words and numbers -------------------------------------------------------------
  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

  function waitWords(seconds) {
    if (seconds < 60) return "less than a minute";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `about ${plural(minutes, "minute")}`;
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    return `about ${plural(hours, "hour")}${rest ? ` ${plural(rest, "minute")}` : ""}`;
  }

  function clock(seconds) {
    const d = Math.floor(seconds / 86400);
    const h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const pad = (n) => String(n).padStart(2, "0");
    const hms = h || d ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
    return d ? `${plural(d, "day")} ${hms}` : hms;
  }

  const secondsUntil = (ms) => Math.max(0, Math.ceil((ms - Date.now()) / 1000));

  // One ticking clock at a time: the opening countdown, then the hold's.
  function every(second) {
    clearInterval(clockTimer);
    second();
    clockTimer = setInterval(second, 1000);
  }
  const stopClock = () => clearInterval(clockTimer);

  function show(el, visible) { el.hidden = !visible; }
  // The queue panel's parts: each state shows only its own.
  function only(...ids) {
    for (const id of ["countdown", "progress", "eta", "hint"]) show($(id), ids.includes(id));
  }
  // Quantity pickers appear only while it is the buyer's turn.
  function picking(on) {
    for (const t of tiers) if (t.picker) show(t.picker, on);
    show($("order-bar"), on);
    if (!on) show($("hold"), false);
    show($("order"), true);
  }

  // The live region: change its text only when it changes, so readers are not spammed.
  function announce(title, line = "") {
    if ($("status-title").textContent !== title) $("status-title").textContent = title;
    if ($("status-line").textContent !== line) $("status-line").textContent = line;
  }

  function showError(text) {
    $("error").textContent = text;
    show($("error"), Boolean(text));
  }

  // ---- the waiting room --------------------------------------------------------------
  async function queue(method) {
    clearTimeout(pollTimer);
    let r;
    try {
      r = await api(method, queuePath, { token: saved.token });
    } catch {
      return retry(method, backoff(), "Connection lost. Retrying…");
    }
    if (r.status === 200) {
      failures = 0;
      return onPlace(r.data);
    }
    if (r.status === 429) return retry(method, Math.max(1, r.retryAfter));
    if (r.status === 401 && saved.token) {
      saved = {}; // a token this event no longer accepts: take a new place
      save();
      return queue("POST");
    }
    if (r.status === 404) return finish("closed", "This event is no longer on sale.");
    return retry(method, r.retryAfter || backoff(), "We're busy. Retrying…");
  }

  function retry(method, seconds, why) {
    if (why) $("hint").textContent = why;
    pollTimer = setTimeout(() => queue(method), seconds * 1000);
  }
  const backoff = () => Math.min(30, 2 ** ++failures);

  function onPlace(place) {
    saved.token = place.visitor_token;
    save();
    $("hint").textContent = "Keep this page open: it moves forward on its own, and reloading keeps your place.";
    show($("note"), place.note === "held_only");
    const previous = state;
    state = place.state;
    main.dataset.state = state;
    if (state === "prequeue") prequeue(place);
    else if (state === "waiting") waiting(place);
    else if (state === "admitted") admitted(place, previous);
    else if (state === "sold_out") finish("sold_out", "Every ticket has been sold. Thank you for waiting with us.");
    else finish("closed", "This on-sale is closed: no more buyers are being let in.");
    if (state === "prequeue" || state === "waiting") {
      pollTimer = setTimeout(() => queue("GET"), Math.max(1, place.poll_after_seconds) * 1000);
    }
  }

  function prequeue(place) {
    announce("The sale opens soon",
      "You're in the pre-queue. When it opens, everyone here gets a random place in line: " +
      "arriving early or late before then makes no difference.");
    const opens = place.eta_seconds == null ? Date.parse(main.dataset.opensAt)
      : Date.now() + place.eta_seconds * 1000; // the server's clock, not this device's
    only("countdown", "hint");
    picking(false);
    every(() => {
      const left = secondsUntil(opens);
      $("countdown").textContent = left > 0 ? `Opens in ${clock(left)}` : "Opening now…";
    });
  }

  function waiting(place) {
    stopClock();
    only("progress", "eta", "hint");
    picking(false);
    const position = place.position;
    saved.first = Math.max(saved.first || 0, position);
    save();
    announce("You're in line", position === 1 ? "You're next!"
      : `You are number ${position.toLocaleString()} in line.`);
    // From where this visitor first stood toward the front; full only once admitted.
    const done = Math.round((100 * (saved.first + 1 - position)) / (saved.first + 1));
    $("progress-bar").style.width = `${done}%`;
    $("progress").setAttribute("aria-valuenow", String(done));
    $("progress").setAttribute("aria-valuetext", `Number ${position} in line`);
    $("eta").textContent = place.eta_seconds == null
      ? "We can't estimate the wait right now: admissions are paused or waiting for tickets to come back."
      : `Estimated wait: ${waitWords(place.eta_seconds)}.`;
  }

  function finish(name, line) {
    clearTimeout(pollTimer);
    stopClock();
    state = name;
    main.dataset.state = name;
    announce(name === "sold_out" ? "Sold out" : "The sale is closed", line);
    only();
    picking(false);
    show($("note"), false);
  }

  // ---- choosing and holding ----------------------------------------------------------
  function admitted(place, previous) {
    admission = place.admission_token;
    stopClock();
    only();
    const until = new Date(place.admission_expires_at).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    announce("It's your turn", `Choose your tickets and hold them before ${until}.`);
    const hold = saved.hold;
    if (hold && Date.parse(hold.expires_at) > Date.now()) return showHold(hold);
    delete saved.hold;
    save();
    choose();
    if (previous !== "admitted") $("tickets-heading").focus();
  }

  function choose() {
    picking(true);
    show($("hold"), false);
    total();
  }

  function chosen() {
    return tiers.filter((t) => t.select && Number(t.select.value) > 0)
      .map((t) => ({ tier_id: t.id, quantity: Number(t.select.value) }));
  }

  function total() {
    const items = chosen();
    const sum = items.reduce((acc, i) => acc + i.quantity * tierById(i.tier_id).price, 0);
    $("total").textContent = money(sum);
    $("hold-button").disabled = items.length === 0;
  }
  const tierById = (id) => tiers.find((t) => t.id === id) || { name: "Tickets", price: 0 };

  async function holdTickets(event) {
    event.preventDefault();
    const items = chosen();
    if (!items.length) return;
    showError("");
    const button = $("hold-button");
    button.disabled = true;
    button.textContent = "Holding…";
    let r = null;
    try {
      r = await api("POST", `/api/events/${encodeURIComponent(eventId)}/holds`,
        { bearer: admission, body: { items } });
    } catch { /* shown below */ }
    button.textContent = "Hold tickets";
    total();
    if (!r) return showError("We couldn't reach the server. Check your connection and try again.");
    if (r.status === 201) {
      saved.hold = r.data;
      save();
      return showHold(r.data);
    }
    showError(problem(r));
    // An admission that expired or ended: ask the room again (back in line if it is over).
    if (r.status === 401 || r.status === 403) queue("POST");
  }

  function problem(r) {
    const d = r.data || {};
    let text = d.detail || `Something went wrong (HTTP ${r.status}). Please try again.`;
    if (d.tier_id && d.available != null) {
      text += ` ${tierById(d.tier_id).name}: ${d.available.toLocaleString()} left.`;
    }
    return text;
  }

  function showHold(hold) {
    show($("order"), false);
    $("hold-items").replaceChildren(...hold.items.map((item) => {
      const li = document.createElement("li");
      const tier = tierById(item.tier_id);
      li.textContent = `${item.quantity} × ${tier.name} (${money(tier.price * item.quantity)})`;
      return li;
    }));
    $("hold-amount").textContent = money(hold.amount);
    show($("hold"), true);
    const expires = Date.parse(hold.expires_at);
    every(() => {
      const left = secondsUntil(expires);
      $("hold-countdown").textContent = clock(left);
      if (left === 0) dropHold("Your hold ran out and the tickets went back on sale.");
    });
    $("hold-heading").focus();
  }

  function dropHold(message) {
    stopClock();
    delete saved.hold;
    save();
    announce("It's your turn", message);
    choose();
    $("tickets-heading").focus();
  }

  async function release() {
    const hold = saved.hold;
    if (!hold) return dropHold("Your tickets were released.");
    showError("");
    let r = null;
    try {
      r = await api("DELETE", `/api/holds/${encodeURIComponent(hold.hold_id)}`, { bearer: admission });
    } catch { /* shown below */ }
    if (!r) return showError("We couldn't reach the server. Your tickets are still held; try again.");
    // 404: already expired or released, which is what was asked.
    if (r.status === 204 || r.status === 404) return dropHold("Your tickets were released.");
    showError(problem(r));
  }

  // ---- start -------------------------------------------------------------------------
  for (const el of document.querySelectorAll("[data-money]")) {
    if (Number(el.dataset.money) > 0) el.textContent = money(Number(el.dataset.money));
  }
  for (const el of document.querySelectorAll("time[data-local-time]")) {
    el.textContent = new Date(el.dateTime).toLocaleString([], {
      weekday: "long", day: "numeric", month: "long", year: "numeric",
      hour: "numeric", minute: "2-digit", timeZoneName: "short",
    });
  }
  $("order").addEventListener("change", total);
  $("order").addEventListener("submit", holdTickets);
  $("release").addEventListener("click", release);
  queue("POST");
})();
