// The event dashboard's promo codes part (templates/console_promo.html): make a code, and
// list the codes with their uses (holds now plus confirmed orders). Uses
// window.onsaleConsole (console.js) once signed in. No framework, no build step.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const box = $("promo");
  if (!box) return;
  const eventId = $("main").dataset.eventId;
  const base = `/api/events/${encodeURIComponent(eventId)}`;
  const CODE = /^[A-Za-z0-9_-]{3,40}$/;
  let c = null;
  let event = null;

  const kind = () => box.querySelector("input[name=kind]:checked").value;

  // "5", "5.5", "5.50" in the event's currency to minor units; null when it is not one.
  function minorUnits(text) {
    const digits = c.exponent(event.currency);
    const m = /^\s*(\d{1,9})(?:[.,](\d*))?\s*$/.exec(text);
    if (!m || (m[2] || "").length > digits) return null;
    return Number(m[1]) * 10 ** digits + Number((m[2] || "").padEnd(digits, "0") || 0);
  }

  function showKind() {
    const percent = kind() === "percent";
    $("pc-value-label").textContent = percent ? "Percent off" : `Amount off (${event ? event.currency : ""})`;
    $("pc-value-hint").textContent = percent ? "1 to 100." : "Off the whole hold, in the event's currency.";
  }

  function tierNames(ids) {
    if (!ids) return "Every tier";
    const byId = Object.fromEntries(event.tiers.map((t) => [t.id, t.name]));
    return ids.map((id) => byId[id] || id).join(", ");
  }

  function validity(p) {
    if (!p.starts_at && !p.ends_at) return "Always";
    if (!p.ends_at) return `From ${c.dateTime(p.starts_at)}`;
    if (!p.starts_at) return `Until ${c.dateTime(p.ends_at)}`;
    return `${c.dateTime(p.starts_at)} – ${c.dateTime(p.ends_at)}`;
  }

  async function load() {
    const r = await c.api("GET", `${base}/promo-codes`);
    if (r.status !== 200) return c.say("promo-total", c.problem(r));
    const codes = r.data;
    const used = codes.reduce((n, p) => n + p.uses, 0);
    c.say("promo-total", codes.length
      ? `${codes.length} code${codes.length === 1 ? "" : "s"}, ${used.toLocaleString()} use${used === 1 ? "" : "s"} now.`
      : "No promo codes yet.");
    $("promo-body").replaceChildren(...codes.map((p) => c.el("tr", {},
      c.el("th", { scope: "row", class: "promo-code", text: p.code }),
      c.el("td", {
        "data-label": "Discount",
        text: p.percent_off !== null ? `${p.percent_off}% off` : `${c.money(p.amount_off, event.currency)} off`,
      }),
      c.el("td", {
        "data-label": "Uses",
        class: "num",
        text: p.max_uses ? `${p.uses.toLocaleString()} of ${p.max_uses.toLocaleString()}` : p.uses.toLocaleString(),
      }),
      c.el("td", { "data-label": "Tiers", text: tierNames(p.tier_ids) }),
      c.el("td", { "data-label": "Valid", text: validity(p) }))));
    c.show($("promo-table"), codes.length > 0);
  }

  function check(form) {
    const code = $("pc-code");
    const value = $("pc-value");
    const uses = $("pc-uses");
    const starts = $("pc-starts");
    const ends = $("pc-ends");
    const body = { code: code.value.trim() };
    const ok = [];
    ok.push(c.fieldError(code, CODE.test(body.code) ? "" : "3 to 40 letters, digits, - or _ (no spaces)."));
    if (kind() === "percent") {
      const n = Number(value.value);
      const good = /^\s*\d+\s*$/.test(value.value) && n >= 1 && n <= 100;
      ok.push(c.fieldError(value, good ? "" : "A whole number from 1 to 100."));
      body.percent_off = n;
    } else {
      const minor = minorUnits(value.value);
      ok.push(c.fieldError(value, minor ? "" : `An amount in ${event.currency}, more than zero.`));
      body.amount_off = minor;
    }
    if (uses.value.trim() !== "") {
      const n = Number(uses.value);
      const good = Number.isInteger(n) && n >= 1 && n <= 1000000000;
      ok.push(c.fieldError(uses, good ? "" : "A whole number of at least 1, or empty for no limit."));
      body.max_uses = n;
    }
    if (starts.value) body.starts_at = new Date(starts.value).toISOString();
    if (ends.value) body.ends_at = new Date(ends.value).toISOString();
    const order = !(body.starts_at && body.ends_at) || Date.parse(body.ends_at) > Date.parse(body.starts_at);
    ok.push(c.fieldError(ends, order ? "" : "After the start of its validity."));
    const tiers = [...$("pc-tiers").querySelectorAll("input:checked")].map((i) => i.value);
    if (tiers.length) body.tier_ids = tiers;
    if (!ok.every(Boolean)) {
      form.querySelector("[aria-invalid=true]").focus();
      return null;
    }
    return body;
  }

  async function create(e) {
    e.preventDefault();
    c.clearErrors(e.target);
    c.say("promo-status", "");
    const body = check(e.target);
    if (!body) return;
    const button = $("pc-create");
    button.disabled = true;
    const r = await c.api("POST", `${base}/promo-codes`, body);
    button.disabled = false;
    if (r.status === 409) {
      c.fieldError($("pc-code"), c.problem(r));
      return $("pc-code").focus();
    }
    if (r.status !== 201) return c.say("promo-status", c.problem(r));
    e.target.reset();
    showKind();
    c.say("promo-status", `Code ${r.data.code} created.`);
    await load();
  }

  document.addEventListener("console:ready", async () => {
    c = window.onsaleConsole;
    const r = await c.api("GET", base);
    if (r.status !== 200) return c.show(box, false);
    event = r.data;
    $("pc-tiers").replaceChildren(...event.tiers.map((t) => c.el("label", {},
      c.el("input", { type: "checkbox", name: "tier_ids", value: t.id }), t.name)));
    showKind();
    box.querySelectorAll("input[name=kind]").forEach((i) => i.addEventListener("change", showKind));
    $("promo-form").addEventListener("submit", create);
    await load();
    // Uses move as buyers hold and pay: look again now and then.
    setInterval(load, 15000);
  });
})();
