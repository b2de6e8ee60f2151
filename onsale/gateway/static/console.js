// The organizer's and admin's console: sign-in, my events, the event form, admin.
// Pages are server-rendered shells; everything else is the JSON API with the session
// cookie (writes carry X-CSRF-Token). No framework, no build step. dashboard.js uses
// window.onsaleConsole for the live dashboard.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const main = $("main");
  let csrf = "";
  let me = null;

  // ---- the API -------------------------------------------------------------------------
  async function api(method, path, data) {
    const headers = { Accept: "application/json" };
    if (data !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    let res;
    try {
      res = await fetch(path, {
        method, headers, credentials: "same-origin", cache: "no-store",
        body: data === undefined ? undefined : JSON.stringify(data),
      });
    } catch {
      return { status: 0, data: null };
    }
    const parsed = res.status === 204 ? null : await res.json().catch(() => null);
    // A session that ended while the page was open: sign in again, then come back here.
    if (res.status === 401 && body.dataset.page !== "login") toLogin();
    return { status: res.status, data: parsed };
  }

  function problem(r) {
    if (!r || r.status === 0) return "We couldn't reach the server. Check your connection and try again.";
    const d = r.data || {};
    return d.detail || `Something went wrong (HTTP ${r.status}).`;
  }

  function toLogin() {
    const next = location.pathname + location.search;
    location.replace(`/login?next=${encodeURIComponent(next)}`);
  }

  // Only a path on this site: never another origin (//evil.example, /\evil.example, nor
  // /<tab>/evil.example, which a browser reads as //evil.example: it drops tabs and line
  // breaks), so the URL is resolved as the browser will and its origin compared.
  function safeNext() {
    const next = new URLSearchParams(location.search).get("next") || "";
    if (!next.startsWith("/")) return "/organizer";
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/organizer";
  }

  // ---- on screen -----------------------------------------------------------------------
  const show = (el, visible) => { if (el) el.hidden = !visible; };

  function showError(text) {
    const el = $("error");
    el.textContent = text || "";
    show(el, Boolean(text));
    if (text) el.scrollIntoView({ block: "nearest" });
  }

  function say(id, text) {
    const el = $(id);
    if (el) el.textContent = text || "";
  }

  function fieldError(input, text) {
    const err = input.parentElement.querySelector(".field-error");
    input.setAttribute("aria-invalid", text ? "true" : "false");
    if (err) { err.textContent = text || ""; show(err, Boolean(text)); }
    return !text;
  }

  function clearErrors(form) {
    for (const input of form.querySelectorAll("[aria-invalid]")) fieldError(input, "");
    showError("");
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  // A confirmation for what cannot simply be undone; resolves true only on the named action.
  function confirmAction(title, text, action) {
    const dialog = $("confirm");
    say("confirm-title", title);
    say("confirm-text", text);
    say("confirm-yes", action);
    const opener = document.activeElement;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        if (opener && opener.focus) opener.focus();
        resolve(dialog.returnValue === "ok");
      }, { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      $("confirm-no").focus();
    });
  }

  // ---- numbers, money, times -----------------------------------------------------------
  const ZERO_DECIMAL = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(" ");
  const THREE_DECIMAL = "BHD IQD JOD KWD LYD OMR TND".split(" ");
  const exponent = (cur) => (ZERO_DECIMAL.includes(cur) ? 0 : THREE_DECIMAL.includes(cur) ? 3 : 2);

  function money(minor, currency) {
    const digits = exponent(currency);
    try {
      return new Intl.NumberFormat(undefined, {
        style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
      }).format(minor / 10 ** digits);
    } catch {
      return `${currency} ${(minor / 10 ** digits).toFixed(digits)}`;
    }
  }

  // "45", "45.5", "45.50" to minor units; null when it is not a price in that currency.
  function parsePrice(text, currency) {
    const digits = exponent(currency);
    const m = /^\s*(\d{1,9})(?:[.,](\d*))?\s*$/.exec(text);
    if (!m || (m[2] || "").length > digits) return null;
    return Number(m[1]) * 10 ** digits + Number((m[2] || "").padEnd(digits, "0") || 0);
  }

  const priceText = (minor, currency) => {
    const digits = exponent(currency);
    return digits ? (minor / 10 ** digits).toFixed(digits) : String(minor);
  };

  const dateTime = (iso) => (iso ? new Date(iso).toLocaleString(undefined, {
    dateStyle: "medium", timeStyle: "short",
  }) : "");

  // <input type="datetime-local"> speaks the browser's local time, without a zone.
  function toLocalInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }
  const fromLocalInput = (value) => (value ? new Date(value).toISOString() : null);

  function saleState(event) {
    const now = Date.now();
    if (event.status === "cancelled") return "Cancelled";
    if (event.onsale.closes_at && Date.parse(event.onsale.closes_at) <= now) return "Closed";
    if (Date.parse(event.onsale.opens_at) > now) return "Scheduled";
    return event.onsale.paused ? "Paused" : "On sale";
  }

  // Scheduled, but code holders are already being let in: worth telling apart in a list.
  const inPresale = (event) => saleState(event) === "Scheduled" && !event.onsale.paused
    && Boolean(event.onsale.presale_opens_at) && Date.parse(event.onsale.presale_opens_at) <= Date.now();

  // ---- who is signed in ----------------------------------------------------------------
  async function session() {
    const r = await api("GET", "/api/me");
    if (r.status !== 200) return null;
    csrf = r.data.csrf_token || "";
    return r.data.user || r.data;
  }

  async function signOut() {
    await api("POST", "/api/auth/logout");
    location.assign("/login");
  }

  // ---- /login --------------------------------------------------------------------------
  async function loginPage() {
    const form = $("login");
    const email = $("login-email");
    const password = $("login-password");
    if (await session()) return location.replace(safeNext());
    email.focus();
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      const ok = [
        fieldError(email, email.value.trim() ? "" : "Enter your email address."),
        fieldError(password, password.value ? "" : "Enter your password."),
      ].every(Boolean);
      if (!ok) return form.querySelector("[aria-invalid=true]").focus();
      const button = $("login-button");
      button.disabled = true;
      button.textContent = "Signing in…";
      const r = await api("POST", "/api/auth/login", { email: email.value.trim(), password: password.value });
      button.disabled = false;
      button.textContent = "Sign in";
      if (r.status === 200) return location.assign(safeNext());
      showError(r.status === 401 ? "That email and password don't match an account." : problem(r));
      password.value = "";
      password.focus();
    });
  }

  // ---- event lists (/organizer, /admin) ------------------------------------------------
  async function loadEvents() {
    const items = [];
    let cursor = "";
    do { // every page: an organizer's own events, or for an admin every event
      const q = new URLSearchParams({ limit: "100" });
      if (cursor) q.set("cursor", cursor);
      const r = await api("GET", `/api/events?${q}`);
      if (r.status !== 200) { say("events-status", problem(r)); return; }
      items.push(...(Array.isArray(r.data) ? r.data : r.data.items || []));
      cursor = Array.isArray(r.data) ? "" : r.data.next_cursor || "";
    } while (cursor && items.length < 1000);
    const tbody = $("events-body");
    tbody.replaceChildren(...items.map((ev) => {
      const id = encodeURIComponent(ev.id);
      return el("tr", {},
        el("th", { scope: "row" }, el("a", { href: `/organizer/events/${id}`, text: ev.title })),
        el("td", { text: dateTime(ev.starts_at), "data-label": "Starts" }),
        el("td", { text: dateTime(ev.onsale.opens_at), "data-label": "On sale" }),
        el("td", { "data-label": "Status" }, inPresale(ev)
          ? el("span", { class: "badge state-presale", text: "Presale" })
          : el("span", { class: `badge state-${saleState(ev).toLowerCase().replace(" ", "-")}`, text: saleState(ev) })),
        el("td", { class: "actions" },
          el("a", { href: `/organizer/events/${id}`, text: "Dashboard", "aria-label": `Dashboard of ${ev.title}` }),
          el("a", { href: `/organizer/events/${id}/edit`, text: "Edit", "aria-label": `Edit ${ev.title}` })));
    }));
    show($("events-table"), items.length > 0);
    say("events-status", items.length ? `${items.length} event${items.length === 1 ? "" : "s"}.`
      : "No events yet. Create one to start selling.");
  }

  // ---- the event form ------------------------------------------------------------------
  let tierCount = 0;
  let loaded = null; // the event being edited, as the API last gave it

  function addTier(tier, locked) {
    const n = ++tierCount;
    const li = $("tier-template").content.firstElementChild.cloneNode(true);
    li.querySelector(".tier-legend").textContent = tier && tier.name ? `Tier: ${tier.name}` : `Tier ${n}`;
    li.querySelector("[name=tier_id]").value = (tier && tier.id) || "";
    for (const input of li.querySelectorAll("[data-name]")) {
      const key = input.dataset.name;
      input.id = `t${n}-${key}`;
      const label = li.querySelector(`[data-for=${key}]`);
      label.htmlFor = input.id;
      const err = input.parentElement.querySelector(".field-error");
      err.id = `${input.id}-error`;
      input.setAttribute("aria-describedby", err.id);
    }
    if (tier) {
      li.querySelector("[data-name=name]").value = tier.name;
      li.querySelector("[data-name=price]").value = priceText(tier.price, $("f-currency").value);
      li.querySelector("[data-name=capacity]").value = tier.capacity;
      li.querySelector("[data-name=limit]").value = tier.per_order_limit || "";
      // Prices are fixed once the sale has opened; an existing tier is never removed.
      li.querySelector("[data-name=price]").disabled = Boolean(locked);
      li.querySelector(".remove-tier").remove();
    } else {
      li.querySelector(".remove-tier").addEventListener("click", () => {
        const next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        if (next) next.querySelector("input:not([type=hidden])").focus();
        else $("add-tier").focus();
      });
    }
    $("tier-rows").append(li);
    return li;
  }

  function validTiers(currency) {
    let ok = true;
    const tiers = [];
    for (const li of $("tier-rows").children) {
      const get = (k) => li.querySelector(`[data-name=${k}]`);
      const name = get("name").value.trim();
      const price = parsePrice(get("price").value, currency);
      const capacity = get("capacity").value === "" ? NaN : Number(get("capacity").value);
      const limitRaw = get("limit").value;
      const limit = limitRaw === "" ? null : Number(limitRaw);
      ok = fieldError(get("name"), name ? "" : "Give the tier a name.") && ok;
      ok = fieldError(get("price"), price === null ? `Enter a price like ${exponent(currency) ? "45.00" : "4500"} (0 for free).` : "") && ok;
      ok = fieldError(get("capacity"), Number.isInteger(capacity) && capacity >= 0 ? "" : "Enter a whole number of tickets, 0 or more.") && ok;
      ok = fieldError(get("limit"), limit === null || (Number.isInteger(limit) && limit >= 1 && limit <= 100) ? "" : "Between 1 and 100, or empty.") && ok;
      const tier = { name, price, capacity };
      if (limit !== null) tier.per_order_limit = limit;
      const id = li.querySelector("[name=tier_id]").value;
      if (id) tier.id = id;
      tiers.push(tier);
    }
    if (!tiers.length) {
      showError("Add at least one tier: what is on sale, at what price, how many.");
      return null;
    }
    return ok ? tiers : null;
  }

  const intField = (input, min, max, optional) => {
    const v = input.value.trim();
    if (v === "" && optional) return fieldError(input, "");
    const n = Number(v);
    return fieldError(input, v !== "" && Number.isInteger(n) && n >= min && n <= max ? "" : `Enter a whole number from ${min.toLocaleString()} to ${max.toLocaleString()}${optional ? ", or leave it empty" : ""}.`);
  };

  function validForm() {
    const f = (id) => $(id);
    const currency = f("f-currency").value.trim().toUpperCase();
    f("f-currency").value = currency;
    const country = f("f-country").value.trim().toUpperCase();
    f("f-country").value = country;
    const checks = [
      fieldError(f("f-title"), f("f-title").value.trim() ? "" : "Give the event a title."),
      fieldError(f("f-starts"), f("f-starts").value ? "" : "When does the event start?"),
      fieldError(f("f-currency"), /^[A-Z]{3}$/.test(currency) ? "" : "Three letters, like USD."),
      fieldError(f("f-country"), !country || /^[A-Z]{2}$/.test(country) ? "" : "Two letters, like NO or US, or leave it empty."),
      f("f-opens").disabled || fieldError(f("f-opens"), f("f-opens").value ? "" : "When does the sale open?"),
      intField(f("f-rate"), 1, 1000000, false),
      intField(f("f-max-active"), 1, 10000000, true),
      f("f-hold").disabled || intField(f("f-hold"), 30, 3600, false),
      intField(f("f-pow"), 0, 100000000, true),
    ];
    const starts = fromLocalInput(f("f-starts").value);
    const opens = fromLocalInput(f("f-opens").value);
    const closes = fromLocalInput(f("f-closes").value);
    if (checks[4] && !f("f-opens").disabled && starts && opens && opens >= starts) {
      checks.push(fieldError(f("f-opens"), "The sale must open before the event starts."));
    }
    if (closes && opens && closes <= opens) checks.push(fieldError(f("f-closes"), "The sale must close after it opens."));
    // The API changes these, but cannot take them away once set.
    const kept = "It can be changed, not removed, once set.";
    if (loaded && loaded.onsale.max_active && !f("f-max-active").value.trim()) checks.push(fieldError(f("f-max-active"), kept));
    if (loaded && loaded.onsale.closes_at && !f("f-closes").disabled && !closes) checks.push(fieldError(f("f-closes"), kept));
    if (loaded && loaded.onsale.pow_difficulty != null && !f("f-pow").value.trim()) checks.push(fieldError(f("f-pow"), kept));
    const tiers = validTiers(currency);
    if (!checks.every(Boolean) || !tiers) return null;
    const venueName = f("f-venue").value.trim();
    const venue = venueName ? { name: venueName } : null;
    if (venue && f("f-city").value.trim()) venue.city = f("f-city").value.trim();
    if (venue && country) venue.country = country;
    const event = {
      title: f("f-title").value.trim(), description: f("f-description").value.trim(),
      starts_at: starts, currency, tiers,
    };
    if (venue) event.venue = venue;
    const onsale = { admit_per_minute: Number(f("f-rate").value) };
    if (f("f-max-active").value.trim()) onsale.max_active = Number(f("f-max-active").value);
    if (f("f-pow").value.trim()) onsale.pow_difficulty = Number(f("f-pow").value);
    if (!f("f-opens").disabled) {
      onsale.opens_at = opens;
      onsale.hold_seconds = Number(f("f-hold").value);
      if (closes) onsale.closes_at = closes;
    }
    return { event, onsale };
  }

  // The API's detail names the field it refused ("onsale.opens_at must be ..."): point at it.
  const FIELDS = [
    [/closes_at/, "f-closes"], [/opens_at/, "f-opens"], [/starts_at/, "f-starts"],
    [/currency/, "f-currency"], [/country/, "f-country"], [/title/, "f-title"],
    [/admit_per_minute/, "f-rate"], [/max_active/, "f-max-active"], [/hold_seconds/, "f-hold"],
    [/pow_difficulty/, "f-pow"],
  ];

  function refused(r) {
    const text = problem(r);
    showError(text);
    const d = r.data || {};
    const row = d.tier_id && [...$("tier-rows").children]
      .find((li) => li.querySelector("[name=tier_id]").value === d.tier_id);
    if (row) { // capacity_below_taken, or a price after the tier's sale opened
      const input = row.querySelector(`[data-name=${d.code === "capacity_below_taken" ? "capacity" : "price"}]`);
      fieldError(input, text);
      return input.focus();
    }
    const hit = FIELDS.find(([re]) => re.test(text));
    if (hit) { fieldError($(hit[1]), text); $(hit[1]).focus(); } else $("error").focus();
  }

  async function eventFormPage() {
    const eventId = main.dataset.eventId;
    const form = $("event-form");
    let zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch { /* old browser */ }
    for (const span of document.querySelectorAll(".tz")) span.textContent = zone || "local time";
    $("error").tabIndex = -1;
    $("add-tier").addEventListener("click", () => addTier(null).querySelector("input:not([type=hidden])").focus());
    if (eventId) {
      const r = await api("GET", `/api/events/${encodeURIComponent(eventId)}`);
      if (r.status !== 200) return showError(problem(r));
      const ev = loaded = r.data;
      const opened = Date.parse(ev.onsale.opens_at) <= Date.now();
      $("f-title").value = ev.title;
      $("f-description").value = ev.description || "";
      $("f-starts").value = toLocalInput(ev.starts_at);
      $("f-currency").value = ev.currency;
      $("f-currency").disabled = true; // prices are kept in this currency's minor units
      if (ev.venue) {
        $("f-venue").value = ev.venue.name || "";
        $("f-city").value = ev.venue.city || "";
        $("f-country").value = ev.venue.country || "";
      }
      for (const t of ev.tiers) addTier(t, opened);
      $("f-opens").value = toLocalInput(ev.onsale.opens_at);
      $("f-closes").value = toLocalInput(ev.onsale.closes_at);
      $("f-rate").value = ev.onsale.admit_per_minute;
      $("f-max-active").value = ev.onsale.max_active || "";
      $("f-hold").value = ev.onsale.hold_seconds;
      $("f-pow").value = ev.onsale.pow_difficulty ?? "";
      for (const id of ["f-opens", "f-closes", "f-hold"]) $(id).disabled = opened;
      show($("schedule-locked"), opened);
      document.title = `Edit ${ev.title} · onsale console`;
    } else {
      addTier(null);
      $("f-title").focus();
    }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      say("form-status", "");
      const body = validForm();
      if (!body) return (form.querySelector("[aria-invalid=true]") || $("add-tier")).focus();
      const button = $("save-event");
      button.disabled = true;
      let r;
      if (eventId) {
        const path = `/api/events/${encodeURIComponent(eventId)}`;
        const { currency, ...details } = body.event; // fixed once created
        r = await api("PATCH", path, details);
        if (r.status === 200) r = await api("PATCH", `${path}/onsale`, body.onsale);
      } else {
        r = await api("POST", "/api/events", { ...body.event, onsale: body.onsale });
      }
      button.disabled = false;
      if (r.status !== 200 && r.status !== 201) return refused(r);
      say("form-status", "Saved.");
      location.assign(`/organizer/events/${encodeURIComponent(eventId || r.data.id)}`);
    });
  }

  // ---- /admin --------------------------------------------------------------------------
  const ROLES = ["organizer", "staff", "admin"];

  async function loadUsers() {
    const r = await api("GET", "/api/users");
    if (r.status !== 200) return showError(problem(r));
    const users = Array.isArray(r.data) ? r.data : r.data.items || r.data.users || [];
    $("users-body").replaceChildren(...users.map(userRow));
  }

  function userRow(user) {
    const select = el("select", { id: `role-${user.id}`, "aria-label": `Role of ${user.email}` },
      ...ROLES.map((role) => el("option", { value: role, selected: role === user.role, text: role[0].toUpperCase() + role.slice(1) })));
    select.addEventListener("change", async () => {
      const r = await api("PATCH", `/api/users/${encodeURIComponent(user.id)}`, { role: select.value });
      if (r.status !== 200) { select.value = user.role; return showError(problem(r)); }
      user.role = select.value;
      say("user-status", `${user.email} is now ${/^[aeiou]/.test(user.role) ? "an" : "a"} ${user.role}.`);
    });
    const disabled = Boolean(user.disabled);
    const toggle = el("button", { type: "button", class: `button small ${disabled ? "" : "secondary"}`,
      text: disabled ? "Enable" : "Disable", "aria-label": `${disabled ? "Enable" : "Disable"} ${user.email}` });
    toggle.addEventListener("click", async () => {
      if (!user.disabled && !(await confirmAction(`Disable ${user.email}?`,
        "They are signed out and can no longer sign in or use their API tokens until enabled again.", "Disable"))) return;
      const r = await api("PATCH", `/api/users/${encodeURIComponent(user.id)}`, { disabled: !user.disabled });
      if (r.status !== 200) return showError(problem(r));
      const next = userRow({ ...user, ...(r.data || {}), disabled: !user.disabled });
      say("user-status", `${user.email} is ${user.disabled ? "enabled" : "disabled"}.`);
      toggle.closest("tr").replaceWith(next);
      next.querySelector("button").focus();
    });
    return el("tr", { class: disabled ? "is-disabled" : null },
      el("th", { scope: "row", text: user.email }),
      el("td", { "data-label": "Role" }, select),
      el("td", { class: "actions" }, el("span", { class: "badge", text: disabled ? "Disabled" : "Active" }), toggle));
  }

  async function adminPage() {
    if (me.role !== "admin") {
      showError("This page is for admins. Ask an admin if you need access.");
      for (const s of main.querySelectorAll("section")) s.hidden = true;
      return;
    }
    const form = $("user-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      const email = $("u-email");
      const password = $("u-password");
      const ok = [
        fieldError(email, /^[^@\s]+@[^@\s]+$/.test(email.value.trim()) ? "" : "Enter an email address."),
        fieldError(password, password.value.length >= 8 ? "" : "At least 8 characters."),
      ].every(Boolean);
      if (!ok) return form.querySelector("[aria-invalid=true]").focus();
      const r = await api("POST", "/api/users", { email: email.value.trim(), role: $("u-role").value, password: password.value });
      if (r.status !== 201 && r.status !== 200) {
        const text = problem(r);
        const target = /password/i.test(text) ? password : email;
        fieldError(target, text);
        return target.focus();
      }
      say("user-status", `Added ${email.value.trim()}.`);
      form.reset();
      loadUsers();
    });
    await Promise.all([loadUsers(), loadEvents()]);
  }

  // ---- start ---------------------------------------------------------------------------
  async function start() {
    const page = body.dataset.page;
    if (page === "login") return loginPage();
    me = await session();
    if (!me) return toLogin();
    body.dataset.auth = "ok";
    say("who", me.email);
    show($("nav-admin"), me.role === "admin");
    $("sign-out").addEventListener("click", signOut);
    if (me.role === "staff") { // the door, not the sale: nothing here is theirs
      for (const part of main.querySelectorAll("section, form, .page-head a")) part.hidden = true;
      return showError("You're signed in as staff: checking tickets in at the door is all your role does: the door scanner is at /scan. Ask an organizer or an admin if you need more.");
    }
    if (page === "events") return loadEvents();
    if (page === "event-form") return eventFormPage();
    // Page scripts (dashboard.js, report.js) start once the session is known.
    if (["dashboard", "report", "admin"].includes(page)) document.dispatchEvent(new CustomEvent("console:ready"));
    if (page === "admin") return adminPage();
  }

  window.onsaleConsole = {
    api, problem, showError, say, show, fieldError, clearErrors, confirmAction, money, exponent,
    dateTime, saleState, inPresale, el, user: () => me,
  };
  start();
})();
