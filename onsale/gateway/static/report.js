// Reports in the console: an event's report page (/organizer/events/{id}/report: sales,
// velocity, cumulative sales by tier, funnel, check-ins, promo codes, CSV exports) and the
// platform report on /admin. Both read the JSON API (GET /api/events/{id}/report,
// GET /api/admin/report) with an optional period; charts by the vendored Chart.js.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const main = $("main");
  const page = document.body.dataset.page;
  let c = null; // window.onsaleConsole
  const charts = {};
  const PALETTE = ["#4f46e5", "#d97706", "#0f766e", "#be185d", "#2563eb", "#65a30d", "#9333ea", "#dc2626"];
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const num = (n) => Number(n || 0).toLocaleString();

  // ---- the period ----------------------------------------------------------------------
  // <input type="datetime-local"> is the browser's local time; the API takes UTC.
  function isoOf(input) {
    if (!input.value) return "";
    const t = new Date(input.value);
    return Number.isNaN(t.getTime()) ? null : t.toISOString();
  }

  function period(form) {
    const from = form.querySelector("[name=from]");
    const to = form.querySelector("[name=to]");
    c.clearErrors(form);
    const a = isoOf(from);
    const b = isoOf(to);
    const ok = [
      c.fieldError(from, a === null ? "Enter a date and time." : ""),
      c.fieldError(to, b === null ? "Enter a date and time."
        : a && b && Date.parse(a) >= Date.parse(b) ? "The end must be after the start." : ""),
    ].every(Boolean);
    if (!ok) {
      form.querySelector("[aria-invalid=true]").focus();
      return null;
    }
    const q = new URLSearchParams();
    if (a) q.set("from", a);
    if (b) q.set("to", b);
    return q.toString();
  }

  // ---- charts --------------------------------------------------------------------------
  const timeLabel = (ms, long) => new Date(ms).toLocaleString([], long
    ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" });

  function draw(key, config) {
    const Chart = window.Chart;
    const canvas = $(`c-${key}`);
    if (!Chart || !canvas) return; // the tables and figures still tell it all
    if (charts[key]) charts[key].destroy();
    // No axes around nothing: an empty chart hides (its section says why).
    canvas.parentElement.hidden = config.empty === true;
    const muted = css("--muted");
    const line = css("--line");
    const base = {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: config.legend || false, labels: { color: muted, boxWidth: 12 } } },
      scales: {
        x: { ticks: { color: muted, maxTicksLimit: 6, maxRotation: 0 }, grid: { color: line } },
        y: { beginAtZero: true, ticks: { color: muted, maxTicksLimit: 5, precision: 0 }, grid: { color: line } },
      },
    };
    if (config.indexAxis) {
      // Lying bars: the counts are along x, in whole people.
      base.indexAxis = config.indexAxis;
      base.scales.x.ticks.precision = 0;
      base.scales.x.beginAtZero = true;
    }
    if (config.timeAxis) {
      const [first, last] = config.timeAxis;
      const span = last - first;
      base.scales.x.type = "linear";
      // The axis spans the data (to the end of the last minute or quarter hour), not round
      // numbers around it.
      base.scales.x.min = first;
      base.scales.x.max = last + config.step;
      base.scales.x.ticks.callback = (v) => timeLabel(v, span > 20 * 3600 * 1000);
      // Ticks on whole minutes or quarter hours, as many as fit the canvas (about one per
      // 80 px): unrounded ticks a few seconds apart read "08:02 PM" three times, and six of
      // them crowd a phone's axis.
      const fit = Math.max(2, Math.min(6, Math.floor(canvas.clientWidth / 80)));
      const every = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 40320]
        .map((m) => m * MINUTE).filter((ms) => ms % config.step === 0)
        .find((ms) => (span + config.step) / ms <= fit) || 80640 * MINUTE;
      base.scales.x.ticks.stepSize = every;
      base.scales.x.ticks.maxTicksLimit = fit + 1;
      base.plugins.tooltip = { callbacks: { title: (items) => timeLabel(items[0].parsed.x, true) } };
    }
    charts[key] = new Chart(canvas, { type: config.type, data: config.data, options: base });
  }

  // A bar in the middle of its minute or quarter hour, so it covers the time it counts.
  const points = (rows, value, step) => rows.map((r) => ({ x: Date.parse(r.at) + step / 2, y: value(r) }));
  const MINUTE = 60000;
  // [first, last] instant of rows (now, if there are none).
  const bounds = (rows) => (rows.length ? [Date.parse(rows[0].at), Date.parse(rows[rows.length - 1].at)] : [Date.now(), Date.now()]);

  function velocityChart(report) {
    const rows = report.velocity;
    c.show($("velocity-empty"), rows.length === 0);
    draw("velocity", {
      type: "bar", timeAxis: bounds(rows), step: MINUTE, empty: rows.length === 0,
      data: { datasets: [{ label: "Tickets", data: points(rows, (r) => r.tickets, MINUTE),
        backgroundColor: css("--bar") || PALETTE[0], barPercentage: 1, categoryPercentage: 1 }] },
    });
    const total = rows.reduce((n, r) => n + r.tickets, 0);
    const peak = rows.reduce((m, r) => Math.max(m, r.tickets), 0);
    $("c-velocity").setAttribute("aria-label", rows.length
      ? `Tickets sold per minute over ${rows.length} minutes with sales: ${num(total)} in all, at most ${num(peak)} in one minute.`
      : "No sales in this period.");
  }

  function cumulativeChart(report) {
    const names = Object.fromEntries(report.sales.by_tier.map((t) => [t.tier_id, t.name]));
    const byTier = {};
    for (const r of report.tier_velocity) (byTier[r.tier_id] ||= []).push(r);
    // In the event's order of tiers, as the table below.
    const order = report.sales.by_tier.map((t) => t.tier_id).filter((id) => byTier[id]);
    const datasets = order.map((tier, i) => {
      const rows = byTier[tier];
      let sum = 0;
      // From nothing at the first minute of sale; each minute's tickets by its end.
      const start = { x: Date.parse(report.velocity[0].at), y: 0 };
      return {
        label: names[tier] || "Tier", borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length], borderWidth: 2, pointRadius: 0, tension: 0,
        data: [start, ...rows.map((r) => ({ x: Date.parse(r.at) + MINUTE, y: (sum += r.tickets) }))],
      };
    });
    c.show($("cumulative-empty"), datasets.length === 0);
    draw("cumulative", { type: "line", legend: true, timeAxis: bounds(report.velocity), step: MINUTE,
      empty: datasets.length === 0, data: { datasets } });
    $("c-cumulative").setAttribute("aria-label", "Cumulative tickets sold per tier: "
      + report.sales.by_tier.map((t) => `${t.name} ${num(t.sold)}`).join(", "));
  }

  function funnelChart(report) {
    const f = report.funnel;
    const steps = [["Joined", f.joined], ["Admitted", f.admitted], ["Held", f.held], ["Checkouts", f.checkouts], ["Paid", f.paid]];
    // Bars of nothing on an axis of 0.2 steps say less than the zeros listed under it.
    const nobody = steps.every((s) => !s[1]);
    c.show($("funnel-empty"), nobody);
    draw("funnel", {
      type: "bar", indexAxis: "y", empty: nobody,
      data: { labels: steps.map((s) => s[0]),
        datasets: [{ label: "People", data: steps.map((s) => s[1]), backgroundColor: css("--bar") || PALETTE[0] }] },
    });
    const list = $("funnel-list");
    list.replaceChildren(...steps.map(([label, n]) => c.el("div", {}, c.el("dt", { text: label }), c.el("dd", { text: num(n) }))));
    $("c-funnel").setAttribute("aria-label", `Funnel: ${steps.map((s) => `${s[0]} ${num(s[1])}`).join(", ")}`);
  }

  function checkinChart(report) {
    const ck = report.checkin;
    const rows = ck.by_quarter_hour;
    draw("checkins", {
      type: "bar", timeAxis: bounds(rows), step: 15 * MINUTE, empty: rows.length === 0,
      data: { datasets: [{ label: "Check-ins", data: points(rows, (r) => r.count, 15 * MINUTE),
        backgroundColor: PALETTE[2], barPercentage: 1, categoryPercentage: 1 }] },
    });
    const rate = `${(ck.rate * 100).toFixed(1)} %`;
    const noShow = ck.no_show_rate === null || ck.no_show_rate === undefined ? ""
      : ` No-shows after the event: ${(ck.no_show_rate * 100).toFixed(1)} %.`;
    $("checkin-summary").textContent = ck.checked_in || noShow
      ? `${num(ck.checked_in)} checked in (${rate} of tickets sold).${noShow}`
      : "No check-ins in this period."; // its chart hides: say why
    $("c-checkins").setAttribute("aria-label", rows.length
      ? `Check-ins per quarter hour, ${rows.length} quarter hours, ${num(ck.checked_in)} in all.`
      : "No check-ins yet.");
  }

  // ---- the event's report --------------------------------------------------------------
  function showSales(report) {
    const s = report.sales;
    const money = (n) => c.money(n, report.currency);
    const set = (key, text, unit = "") => {
      $(`s-${key}`).textContent = text;
      $(`s-${key}`).title = text; // the whole figure, should a narrow box cut it short
      $(`s-${key}-unit`).textContent = unit;
    };
    set("tickets_sold", num(s.tickets_sold));
    set("orders", num(s.orders));
    set("revenue", money(s.revenue), report.currency);
    set("average_order_value", money(s.average_order_value), "per order");
    set("refunded", money(s.refunded), `${num(s.refunded_orders)} order${s.refunded_orders === 1 ? "" : "s"}`);
    set("discount", money(s.discount), "promo codes");
    $("tier-body").replaceChildren(...s.by_tier.map((t) => c.el("tr", {},
      c.el("th", { scope: "row", text: t.name }), c.el("td", { text: num(t.sold) }),
      c.el("td", { text: money(t.revenue) }))));
    const promos = report.promo_codes;
    c.show($("promo-empty"), promos.length === 0);
    c.show($("promo-table"), promos.length > 0);
    $("promo-body").replaceChildren(...promos.map((p) => c.el("tr", {},
      c.el("th", { scope: "row", text: p.code }), c.el("td", { text: num(p.uses), "data-label": "Uses" }),
      c.el("td", { text: money(p.discount), "data-label": "Discount" }),
      c.el("td", { text: money(p.revenue), "data-label": "Revenue" }))));
  }

  async function eventPage() {
    const eventId = main.dataset.eventId;
    const path = `/api/events/${encodeURIComponent(eventId)}`;
    const form = $("period-form");
    async function load(query) {
      c.say("report-status", "Loading the report…");
      const r = await c.api("GET", `${path}/report${query ? `?${query}` : ""}`);
      if (r.status !== 200) {
        c.say("report-status", "");
        return c.showError(r.status === 404 ? "There is no such event, or it is not yours." : c.problem(r));
      }
      const report = r.data;
      document.title = `Report: ${report.title} · onsale console`;
      $("event-title").textContent = `Report: ${report.title}`;
      showSales(report);
      velocityChart(report);
      cumulativeChart(report);
      funnelChart(report);
      checkinChart(report);
      for (const [id, kind] of [["export-attendees", "attendees"], ["export-orders", "orders"]]) {
        $(id).href = `${path}/${kind}.csv${query ? `?${query}` : ""}`;
      }
      const when = query ? "for the period chosen" : "for the whole sale";
      c.say("report-status", `Report ${when}, as of ${new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}.`);
    }
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const query = period(form);
      if (query !== null) load(query);
    });
    $("r-all").addEventListener("click", () => { form.reset(); c.clearErrors(form); load(""); });
    const ev = await c.api("GET", path);
    if (ev.status === 200) $("event-meta").textContent = `${c.dateTime(ev.data.starts_at)}${ev.data.venue_name ? ` · ${ev.data.venue_name}` : ""}`;
    await load("");
  }

  // ---- the platform report (/admin) ----------------------------------------------------
  async function adminPage() {
    const form = $("platform-form");
    if (!form) return;
    async function load(query) {
      c.say("platform-status", "Loading the platform report…");
      const r = await c.api("GET", `/api/admin/report${query ? `?${query}` : ""}`);
      if (r.status !== 200) return c.say("platform-status", c.problem(r));
      const p = r.data;
      for (const key of ["orders", "tickets", "events", "organizers"]) $(`p-${key}`).textContent = num(p[key]);
      // Money per currency, the largest first; the others under it (never added together),
      // in whole units: a volume, where cents would only crowd the card.
      const whole = (minor, currency) => {
        const units = Math.round(minor / 10 ** c.exponent(currency));
        try {
          return new Intl.NumberFormat(undefined, { style: "currency", currency, maximumFractionDigits: 0 }).format(units);
        } catch {
          return `${currency} ${num(units)}`;
        }
      };
      const volumes = Object.entries(p.gmv_by_currency || {});
      $("p-gmv").textContent = volumes.length ? whole(volumes[0][1], volumes[0][0]) : "0";
      $("p-gmv-unit").textContent = volumes.length > 1
        ? volumes.slice(1).map(([currency, minor]) => `+ ${whole(minor, currency)}`).join(" · ")
        : "confirmed sales";
      const link = (e) => c.el("a", { href: `/organizer/events/${encodeURIComponent(e.event_id)}/report`, text: e.title });
      $("top-body").replaceChildren(...p.top_events.map((e) => c.el("tr", {},
        c.el("th", { scope: "row" }, link(e)), c.el("td", { text: (e.revenue / 100).toLocaleString(undefined, { maximumFractionDigits: 0 }) }))));
      $("fast-body").replaceChildren(...p.fastest_selling.map((e) => c.el("tr", {},
        c.el("th", { scope: "row" }, link(e)), c.el("td", { text: num(Math.round(e.tickets_per_hour)) }))));
      c.show($("top-empty"), p.top_events.length === 0);
      c.show($("fast-empty"), p.fastest_selling.length === 0);
      c.say("platform-status", query ? "Platform report for the period chosen." : "Platform report, all time.");
    }
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const query = period(form);
      if (query !== null) load(query);
    });
    $("p-all").addEventListener("click", () => { form.reset(); c.clearErrors(form); load(""); });
    await load("");
  }

  document.addEventListener("console:ready", () => {
    c = window.onsaleConsole;
    if (page === "report") eventPage();
    else if (page === "admin" && c.user().role === "admin") adminPage();
  });
})();
