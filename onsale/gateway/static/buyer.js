// The buyer's page: join the waiting room, wait (polling only as often as the server
// says), then choose tickets and hold them; checkout.js takes it from there (payment,
// tickets). No framework, no build step.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const main = $("main");
  const eventId = main.dataset.eventId;
  const queuePath = `/api/events/${encodeURIComponent(eventId)}/queue`;
  const storageKey = `onsale:${eventId}`;
  const HINT = "Keep this page open: it moves forward on its own, and reloading keeps your place.";

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
  const tierById = (id) => tiers.find((t) => t.id === id) || { name: "Tickets", price: 0 };

  // {token, first, hold, checkout, order}: kept across reloads, and so is the place.
  let saved = load();
  let admission = null; // the admission token, in memory only: a rejoin gives it again
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

  async function api(method, path, { token, bearer, body, headers: extra } = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (token) headers["X-Visitor-Token"] = token;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, cache: "no-store", body: body ? JSON.stringify(body) : undefined,
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    return { status: res.status, data, retryAfter: Number(res.headers.get("Retry-After")) || 0 };
  }

  // ---- words, numbers, clocks --------------------------------------------------------
  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

  function waitWords(seconds) {
    if (seconds < 60) return "less than a minute";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `about ${plural(minutes, "minute")}`;
    const rest = minutes % 60;
    return `about ${plural(Math.floor(minutes / 60), "hour")}${rest ? ` ${plural(rest, "minute")}` : ""}`;
  }

  function clock(seconds) {
    const pad = (n) => String(n).padStart(2, "0");
    const d = Math.floor(seconds / 86400);
    const h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const hms = h || d ? `${h}:${pad(m)}:${pad(seconds % 60)}` : `${m}:${pad(seconds % 60)}`;
    return d ? `${plural(d, "day")} ${hms}` : hms;
  }

  const secondsUntil = (ms) => Math.max(0, Math.ceil((ms - Date.now()) / 1000));
  const timeOfDay = (ms) => new Date(ms).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });

  // One ticking clock at a time: the opening countdown, then the hold's.
  function every(second) {
    clearInterval(clockTimer);
    second();
    clockTimer = setInterval(second, 1000);
  }
  const stopClock = () => clearInterval(clockTimer);

  // ---- what is on screen -------------------------------------------------------------
  const show = (el, visible) => { el.hidden = !visible; };

  // The queue panel's parts: each state shows only its own.
  function only(...ids) {
    for (const id of ["countdown", "progress", "eta", "hint"]) show($(id), ids.includes(id));
  }

  // The tiers are always listed; quantity pickers only while it is the buyer's turn, and
  // the tiers give way to the hold once there is one, and everything to the order.
  function stage(name) {
    for (const t of tiers) if (t.picker) show(t.picker, name === "choose");
    show($("order-bar"), name === "choose");
    show($("queue"), name !== "order");
    show($("tickets"), name !== "hold" && name !== "order");
    show($("hold"), name === "hold");
    if (name !== "order") show($("order-view"), false);
  }

  // The live region: its text changes only when the words do, so readers are not spammed.
  function announce(title, line = "") {
    if ($("status-title").textContent !== title) $("status-title").textContent = title;
    if ($("status-line").textContent !== line) $("status-line").textContent = line;
  }

  function showError(text) {
    $("error").textContent = text;
    show($("error"), Boolean(text));
  }

  function problem(r) {
    const d = (r && r.data) || {};
    if (!r) return "We couldn't reach the server. Check your connection and try again.";
    let text = d.detail || `Something went wrong (HTTP ${r.status}). Please try again.`;
    if (d.tier_id && d.available > 0) text += ` ${tierById(d.tier_id).name}: ${d.available} left.`;
    return text;
  }

  // ---- the waiting room --------------------------------------------------------------
  // A new place (no token yet) may cost a proof-of-work (buyer_pow.js): solved first.
  async function taxed(method) {
    if (method !== "POST" || saved.token || !pow.wanted()) return {};
    announce("Joining the line…", "");
    try {
      return { "X-Altcha": await pow.solve() };
    } catch {
      return {}; // the join says what is missing, and is retried
    }
  }
  const powRefused = (r) => r.status === 403 && r.data && /^pow_/.test(r.data.code || "");

  async function queue(method) {
    clearTimeout(pollTimer);
    let r;
    try {
      r = await api(method, queuePath, { token: saved.token, headers: await taxed(method) });
    } catch {
      return retry(method, backoff(), "Connection lost. Retrying…");
    }
    if (r.status === 200) return onPlace(r.data);
    if (powRefused(r) && !saved.token) {
      pow.require();
      return retry(method, Math.min(5, backoff()), "One more check. Retrying…");
    }
    if (r.status === 429) return retry(method, Math.max(1, r.retryAfter));
    if (r.status === 401 && saved.token) {
      saved = {}; // a token this event no longer accepts: take a new place
      return queue("POST");
    }
    if (r.status === 404) return finish("closed", "This event is no longer on sale.");
    return retry(method, Math.max(r.retryAfter, backoff()), "We're busy. Retrying…");
  }

  function retry(method, seconds, why) {
    if (why) $("hint").textContent = why;
    pollTimer = setTimeout(() => queue(method), seconds * 1000);
  }
  const backoff = () => Math.min(30, 2 ** ++failures);

  function onPlace(place) {
    failures = 0;
    saved.token = place.visitor_token;
    save();
    $("hint").textContent = HINT;
    show($("note"), place.note === "held_only");
    const previous = state;
    state = main.dataset.state = place.state;
    presale.update(place);
    if (state === "prequeue") prequeue(place);
    else if (state === "waiting") waiting(place);
    else if (state === "admitted") admitted(place, previous);
    else if (state === "sold_out") finish(state, "Every ticket has been sold. Thank you for waiting with us.");
    else finish("closed", "This on-sale is closed: no more buyers are being let in.");
    if (state === "prequeue" || state === "waiting") {
      pollTimer = setTimeout(() => queue("GET"), Math.max(1, place.poll_after_seconds) * 1000);
    }
  }

  function prequeue(place) {
    const early = place.line === "presale";
    if (early) {
      announce("The presale opens soon",
        "You're in the presale's pre-queue. At the presale's opening everyone here gets a " +
        "random place in line, so arriving early or late before then makes no difference.");
    } else {
      announce("The sale opens soon",
        "You're in the pre-queue. At opening everyone here gets a random place in line, " +
        "so arriving early or late before then makes no difference.");
    }
    only("countdown", "hint");
    stage("browse");
    const opens = place.eta_seconds == null ? Date.parse(main.dataset.opensAt)
      : Date.now() + place.eta_seconds * 1000; // the server's clock, not this device's
    every(() => {
      const left = secondsUntil(opens);
      const what = early ? "Presale opens" : "Opens";
      $("countdown").textContent = left > 0 ? `${what} in ${clock(left)}` : "Opening now…";
    });
  }

  function waiting(place) {
    stopClock();
    only("progress", "eta", "hint");
    stage("browse");
    const position = place.position;
    announce(place.line === "presale" ? "You're in the presale line" : "You're in line",
      `You are number ${position.toLocaleString()} in line${position === 1 ? ": you're next." : "."}`);
    // From where this visitor first stood toward the front; full only once admitted.
    saved.first = Math.max(saved.first || 0, position);
    save();
    const done = Math.round((100 * (saved.first + 1 - position)) / (saved.first + 1));
    $("progress-bar").style.width = `${done}%`;
    $("progress").setAttribute("aria-valuenow", String(done));
    $("progress").setAttribute("aria-valuetext", `Number ${position.toLocaleString()} in line`);
    $("eta").textContent = place.eta_seconds == null
      ? "We can't estimate the wait right now: admissions are paused or waiting for tickets to come back."
      : `Estimated wait: ${waitWords(place.eta_seconds)}.`;
  }

  function finish(name, line) {
    clearTimeout(pollTimer);
    stopClock();
    state = main.dataset.state = name;
    announce(name === "sold_out" ? "Sold out" : "The sale is closed", line);
    only();
    stage("browse");
    show($("note"), false);
  }

  // ---- choosing and holding ----------------------------------------------------------
  function admitted(place, previous) {
    admission = place.admission_token;
    stopClock();
    only();
    const hold = saved.hold;
    if (hold && Date.parse(hold.expires_at) > Date.now()) return showHold(hold);
    checkout.reset(); // an order for a hold that ran out is over too
    delete saved.hold;
    save();
    choose(`Choose your tickets and hold them before ${timeOfDay(Date.parse(place.admission_expires_at))}.`);
    if (previous !== "admitted") $("tickets-heading").focus();
  }

  function choose(line) {
    announce("It's your turn", line);
    stage("choose");
    total();
  }

  function chosen() {
    return tiers.filter((t) => t.select && Number(t.select.value) > 0)
      .map((t) => ({ tier_id: t.id, quantity: Number(t.select.value) }));
  }

  function total() {
    const items = chosen();
    $("total").textContent = money(items.reduce((sum, i) => sum + i.quantity * tierById(i.tier_id).price, 0));
    $("hold-button").disabled = items.length === 0;
  }

  async function holdTickets(event) {
    event.preventDefault();
    const items = chosen();
    if (!items.length) return;
    showError("");
    const button = $("hold-button");
    button.disabled = true;
    button.textContent = "Holding…";
    const path = `/api/events/${encodeURIComponent(eventId)}/holds`;
    const body = { items };
    const code = promo.code();
    if (code) body.promo_code = code;
    const r = await api("POST", path, { bearer: admission, body }).catch(() => null);
    button.textContent = "Hold tickets";
    total();
    if (r && r.status === 201) {
      saved.hold = r.data;
      save();
      return showHold(r.data);
    }
    if (promo.refused(r)) return; // said at the promo code field
    showError(problem(r));
    // An admission that expired or ended: ask the room again (back in line if it is over).
    if (r && (r.status === 401 || r.status === 403)) queue("POST");
  }

  function showHold(hold) {
    const expires = Date.parse(hold.expires_at);
    announce("It's your turn", `Your tickets are held until ${timeOfDay(expires)}.`);
    $("hold-items").replaceChildren(...hold.items.map((item) => {
      const tier = tierById(item.tier_id);
      const li = document.createElement("li");
      li.textContent = `${item.quantity} × ${tier.name} (${money(tier.price * item.quantity)})`;
      return li;
    }));
    promo.showDiscount(hold);
    $("hold-amount").textContent = money(hold.amount);
    show($("hold-timer"), true);
    show($("hold-note"), false);
    stage("hold");
    every(() => {
      const left = secondsUntil(expires);
      $("hold-countdown").textContent = clock(left);
      // A payment under way finishes first: a late one re-takes the tickets or is refunded.
      if (left === 0 && !checkout.busy()) dropHold("Your hold ran out and the tickets went back on sale.");
    });
    $("hold-heading").focus();
    checkout.start(hold);
  }

  function dropHold(line) {
    stopClock();
    checkout.reset();
    delete saved.hold;
    save();
    choose(line);
    $("tickets-heading").focus();
  }

  async function release() {
    showError("");
    const path = `/api/holds/${encodeURIComponent(saved.hold.hold_id)}`;
    const r = await api("DELETE", path, { bearer: admission }).catch(() => null);
    // 404: it had already run out or been released, which is what was asked.
    if (r && (r.status === 204 || r.status === 404)) return dropHold("Your tickets were released.");
    showError(problem(r));
  }

  // A join with the presale's access code (presale.js): the answer is shown like any join's;
  // a refused code keeps the place, which goes on being polled.
  async function joinWith(code) {
    clearTimeout(pollTimer);
    const body = { access_code: code };
    const headers = await taxed("POST");
    const r = await api("POST", queuePath, { token: saved.token, body, headers }).catch(() => null);
    if (r && powRefused(r)) pow.require();
    if (r && r.status === 200) onPlace(r.data);
    else retry(saved.token ? "GET" : "POST", Math.max(2, (r && r.retryAfter) || 0));
    return r;
  }

  // ---- start -------------------------------------------------------------------------
  const pow = window.onsalePow({ $, show });
  const presale = window.onsalePresale({ $, show, problem, join: joinWith });
  const promo = window.onsalePromo({ $, show, money });
  const checkout = window.onsaleCheckout({
    $, api, money, show, showError, problem, tierById, stage, stopClock,
    store: { get: () => saved, save },
    holdGone: dropHold,
    restart: () => {
      stage("browse");
      queue("POST");
    },
  });
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
  // Paid on an earlier visit: the order and its tickets, not the line.
  if (saved.order && saved.order.paid) checkout.showOrder();
  else queue("POST");
})();
