// The live dashboard of one event: on-sale controls, and every figure of /stats as a number
// and a chart over the last hour, fed by Server-Sent Events (/api/events/{id}/live, one
// `stats` event a second). The hour of points lives in this page only.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const main = $("main");
  const eventId = main.dataset.eventId;
  const path = `/api/events/${encodeURIComponent(eventId)}`;
  const HOUR_MS = 3600 * 1000;
  const RATE_WINDOW_MS = 60 * 1000;
  let c = null; // window.onsaleConsole, once signed in
  let event = null;
  let points = []; // {t, stats}, oldest first, an hour at most
  const charts = {};
  const tierCharts = {};

  // ---- charts --------------------------------------------------------------------------
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  // Seconds on the axis while the page has seen less than a few minutes.
  const clockLabel = (ms) => new Date(ms).toLocaleTimeString([], points.length && points[points.length - 1].t - points[0].t < 300000
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" });

  function chart(canvas, series) {
    const Chart = window.Chart;
    return new Chart(canvas, {
      type: "line",
      data: {
        datasets: series.map((s) => ({
          label: s.label, data: [], borderColor: s.color, backgroundColor: s.color,
          borderWidth: 2, pointRadius: 0, tension: 0, fill: false,
        })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        normalized: true, events: [],
        plugins: { legend: { display: series.length > 1, labels: { color: css("--muted"), boxWidth: 12 } },
          tooltip: { enabled: false },
          // An hour is 3,600 points a line: drawn as at most a few per pixel column.
          decimation: { enabled: true, algorithm: "min-max" } },
        scales: {
          x: { type: "linear", ticks: { color: css("--muted"), maxTicksLimit: 4, callback: clockLabel },
            grid: { color: css("--line") } },
          y: { beginAtZero: true, ticks: { color: css("--muted"), maxTicksLimit: 4, precision: 0 },
            grid: { color: css("--line") } },
        },
      },
    });
  }

  function setupCharts() {
    if (!window.Chart) return; // the numbers still work without the library
    const accent = css("--bar") || "#4f46e5";
    for (const canvas of document.querySelectorAll(".metric canvas")) {
      const key = canvas.id.slice(2);
      charts[key] = chart(canvas, [{ label: canvas.getAttribute("aria-label"), color: accent }]);
    }
  }

  function tierChart(tier) {
    if (tierCharts[tier.id] || !window.Chart) return;
    const canvas = c.el("canvas", { role: "img", "aria-label": `${tier.name}: sold, held and available over the last hour` });
    const box = c.el("figure", { class: "tier-chart" }, c.el("figcaption", { text: tier.name }),
      c.el("div", { class: "chart" }, canvas));
    $("tier-charts").append(box);
    tierCharts[tier.id] = chart(canvas, [
      { label: "Sold", color: css("--bar") || "#4f46e5" },
      { label: "Held", color: "#d97706" },
      { label: "Available", color: css("--good") || "#116b3a" },
    ]);
  }

  // ---- figures -------------------------------------------------------------------------
  const sold = (s) => s.tiers.reduce((n, t) => n + t.sold, 0);

  // Per minute over the last minute of points (or what there is of it, from 5 s on).
  function rateWindow() {
    const last = points[points.length - 1];
    const first = points.find((p) => p.t >= last.t - RATE_WINDOW_MS) || last;
    return { first, last, span: last.t - first.t };
  }

  function perMinute(pick) {
    const { first, last, span } = rateWindow();
    if (span < 5000) return null;
    return Math.max(0, Math.round(((pick(last.stats) - pick(first.stats)) * 60000) / span));
  }

  function figures(stats) {
    const lag = stats.committer_lag;
    return {
      waiting: stats.queue.waiting,
      admitted: stats.queue.admitted,
      active: stats.queue.active,
      admission_rate: perMinute((s) => s.queue.admitted),
      velocity: perMinute(sold),
      revenue: stats.revenue,
      lag: lag ? lag.pending : null,
    };
  }

  const number = (n) => (n === null || n === undefined ? "–" : n.toLocaleString());

  function render(t, stats) {
    const values = figures(stats);
    const currency = stats.currency || (event && event.currency) || "USD";
    for (const [key, value] of Object.entries(values)) {
      const out = $(`m-${key}`);
      const text = key === "revenue" ? c.money(value, currency) : number(value);
      if (out.textContent !== text) out.textContent = text;
      const chartOf = charts[key];
      if (chartOf && value !== null) chartOf.data.datasets[0].data.push({ x: t, y: key === "revenue" ? value / 10 ** c.exponent(currency) : value });
    }
    const lag = stats.committer_lag;
    c.say("m-lag-unit", lag && lag.pending ? `orders not yet in Postgres, oldest ${(lag.oldest_ms / 1000).toFixed(1)} s`
      : "orders not yet in Postgres");
    const span = rateWindow().span;
    const over = span >= RATE_WINDOW_MS - 2000 ? "last minute" : `last ${Math.round(span / 1000)} s`;
    c.say("m-velocity-unit", `tickets a minute, ${over}`);
    if (event) c.say("m-admission_rate-unit", `buyers a minute, ${over} (set: ${number(event.onsale.admit_per_minute)})`);
    renderTiers(t, stats);
    for (const ch of [...Object.values(charts), ...Object.values(tierCharts)]) {
      for (const ds of ch.data.datasets) {
        while (ds.data.length && ds.data[0].x < t - HOUR_MS) ds.data.shift();
      }
      ch.options.scales.x.min = Math.max(t - HOUR_MS, points[0].t);
      ch.options.scales.x.max = t;
      ch.update("none");
    }
  }

  function renderTiers(t, stats) {
    const names = Object.fromEntries(((event && event.tiers) || []).map((x) => [x.id, x.name]));
    const rows = stats.tiers.map((tier) => {
      const name = tier.name || names[tier.id] || "Tier";
      tierChart({ id: tier.id, name });
      const ch = tierCharts[tier.id];
      if (ch) [tier.sold, tier.held, tier.available].forEach((y, i) => ch.data.datasets[i].data.push({ x: t, y }));
      return c.el("tr", { "data-tier-id": tier.id },
        c.el("th", { scope: "row", text: name }),
        c.el("td", { text: number(tier.sold) }), c.el("td", { text: number(tier.held) }),
        c.el("td", { text: number(tier.available) }), c.el("td", { text: number(tier.capacity) }));
    });
    $("tier-body").replaceChildren(...rows);
  }

  function receive(stats) {
    const t = Date.now();
    points.push({ t, stats });
    while (points.length && points[0].t < t - HOUR_MS) points.shift();
    render(t, stats);
    if (stats.checkin_alerts) doorAlerts(stats.checkin_alerts);
  }

  // The door's fraud signals (repeated scans of one ticket, bursts from one device), which
  // the live feed carries; polling asks /checkin/alerts.
  let alertKey = "";
  function doorAlerts(alerts) {
    const key = JSON.stringify(alerts);
    if (key === alertKey) return;
    alertKey = key;
    const list = $("door-alerts");
    if (!list) return;
    list.textContent = "";
    for (const a of alerts) {
      const li = document.createElement("li");
      li.dataset.kind = a.kind;
      li.textContent = `${new Date(a.last_seen).toLocaleTimeString()} · ${a.detail}`;
      list.append(li);
    }
    c.say("door-alerts-none", alerts.length ? "" : "No alerts in the last 15 minutes.");
    $("door-alerts-none").hidden = alerts.length > 0;
  }

  // ---- the feed: SSE, or polling /stats while the stream cannot be had -------------------
  let pollTimer = 0;

  function live(state, text) {
    const el = $("live-state");
    el.dataset.live = state;
    if (el.textContent !== text) el.textContent = text;
  }

  function connect() {
    if (!window.EventSource) return poll();
    const source = new EventSource(`${path}/live`);
    source.addEventListener("open", () => live("live", "Live"));
    source.addEventListener("stats", (e) => {
      live("live", "Live");
      try { receive(JSON.parse(e.data)); } catch { /* a malformed event: wait for the next */ }
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused outright (signed out, no such event, no live feed): ask /stats instead.
        live("polling", "Live feed unavailable: refreshing every 2 seconds");
        poll();
      } else {
        live("reconnecting", "Reconnecting…");
      }
    });
  }

  async function poll() {
    clearTimeout(pollTimer);
    const r = await c.api("GET", `${path}/stats`);
    if (r.status === 200) receive(r.data);
    const door = await c.api("GET", `${path}/checkin/alerts`);
    if (door.status === 200) doorAlerts(door.data);
    else if (r.status === 404 || r.status === 403) return gone(r);
    pollTimer = setTimeout(poll, 2000);
  }

  // Not this person's event (another organizer's is a 404, as if it did not exist).
  function gone(r) {
    for (const section of main.querySelectorAll("section, .head-links")) section.hidden = true;
    c.showError(r.status === 404 ? "We can't find that event." : c.problem(r));
  }

  // ---- the event and its controls -------------------------------------------------------
  function showEvent(ev) {
    event = ev;
    $("event-title").textContent = ev.title;
    document.title = `${ev.title} · live · onsale console`;
    const venue = ev.venue ? [ev.venue.name, ev.venue.city, ev.venue.country].filter(Boolean).join(", ") : "";
    c.say("event-meta", [c.dateTime(ev.starts_at), venue].filter(Boolean).join(" · "));
    const state = c.saleState(ev);
    const opens = c.dateTime(ev.onsale.opens_at);
    const words = {
      Scheduled: `Scheduled: the sale opens ${opens}. Buyers who arrive before then wait in the pre-queue.`,
      "On sale": `On sale since ${opens}: admitting buyers.`,
      Paused: "Paused: nobody is admitted until you resume. Buyers keep their place in line.",
      Closed: `Closed since ${c.dateTime(ev.onsale.closes_at)}.`,
      Cancelled: "Cancelled: the line is closed.",
    };
    c.say("sale-state", c.inPresale(ev)
      ? `Presale: access code holders are being let in; the general sale opens ${opens}.`
      : words[state]);
    $("sale-state").dataset.state = state.toLowerCase().replace(" ", "-");
    c.show($("open-now"), state === "Scheduled");
    c.show($("pause"), state === "On sale" || state === "Scheduled" && !ev.onsale.paused);
    c.show($("resume"), ev.onsale.paused && state !== "Cancelled" && state !== "Closed");
    c.show($("cancel-event"), state !== "Cancelled");
    const rate = $("c-rate");
    const max = $("c-max-active");
    if (document.activeElement !== rate) rate.value = ev.onsale.admit_per_minute;
    if (document.activeElement !== max) max.value = ev.onsale.max_active || "";
    c.say("c-max-active-hint", ev.onsale.max_active ? "Buyers shopping at once, at most." : "Empty: no cap.");
  }

  async function change(body, done) {
    c.showError("");
    const r = await c.api("PATCH", `${path}/onsale`, body);
    if (r.status !== 200) { c.showError(c.problem(r)); return false; }
    showEvent(r.data);
    c.say("control-status", done);
    return true;
  }

  // After a button hides itself, focus goes to the one that takes its place.
  const focusFirst = (...ids) => { const b = ids.map($).find((x) => !x.hidden); if (b) b.focus(); };

  function controls() {
    $("open-now").addEventListener("click", async () => {
      if (await change({ opens_at: new Date().toISOString() }, "The sale is open.")) focusFirst("pause", "resume");
    });
    $("pause").addEventListener("click", async () => {
      const ok = await c.confirmAction("Pause admissions?",
        "Nobody more is let in from the line until you resume. Buyers already shopping can finish.", "Pause");
      if (ok && (await change({ paused: true }, "Admissions are paused."))) focusFirst("resume");
    });
    $("resume").addEventListener("click", async () => {
      if (await change({ paused: false }, "Admissions resumed.")) focusFirst("pause");
    });
    $("cancel-event").addEventListener("click", async () => {
      const ok = await c.confirmAction(`Cancel ${event ? event.title : "this event"}?`,
        "The line closes and every hold is released. This cannot be undone.",
        "Cancel the event");
      if (!ok) return;
      const r = await c.api("POST", `${path}/cancel`, {});
      if (r.status !== 200) return c.showError(c.problem(r));
      const refunded = (r.data && r.data.refunded_orders) || 0;
      c.say("control-status", `The event is cancelled; ${refunded.toLocaleString()} order${refunded === 1 ? "" : "s"} refunded.`);
      const again = await c.api("GET", path);
      if (again.status === 200) showEvent(again.data);
      $("controls-title").focus();
    });
    $("rate-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      c.clearErrors(e.target);
      const rate = $("c-rate");
      const max = $("c-max-active");
      const n = Number(rate.value);
      const m = max.value.trim() === "" ? null : Number(max.value);
      const ok = [
        c.fieldError(rate, Number.isInteger(n) && n >= 1 && n <= 1000000 ? "" : "A whole number from 1 to 1,000,000."),
        c.fieldError(max, m === null && event && event.onsale.max_active
          ? "A cap can be raised or lowered, not removed: set a large number instead."
          : m === null || (Number.isInteger(m) && m >= 1 && m <= 10000000) ? "" : "A whole number from 1, or empty."),
      ].every(Boolean);
      if (!ok) return e.target.querySelector("[aria-invalid=true]").focus();
      const body = { admit_per_minute: n };
      if (m !== null) body.max_active = m;
      await change(body, `Admitting up to ${n.toLocaleString()} a minute${m ? `, at most ${m.toLocaleString()} shopping at once` : ""}.`);
    });
  }

  document.addEventListener("console:ready", async () => {
    c = window.onsaleConsole;
    $("controls-title").tabIndex = -1;
    setupCharts();
    controls();
    const r = await c.api("GET", path);
    if (r.status !== 200) return gone(r);
    showEvent(r.data);
    // The sale's state moves on its own (opening, closing) or from another console: look
    // again now and then.
    setInterval(async () => {
      const again = await c.api("GET", path);
      if (again.status === 200) showEvent(again.data);
    }, 15000);
    connect();
  });
})();
