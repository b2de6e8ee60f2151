// The event dashboard's presale part (templates/console_access.html): the presale's opening,
// access codes generated in bulk (shown once: copy or download them), and their counts.
// Uses window.onsaleConsole (console.js) once signed in. No framework, no build step.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const box = $("access");
  if (!box) return;
  const eventId = $("main").dataset.eventId;
  const base = `/api/events/${encodeURIComponent(eventId)}`;
  let c = null;
  let event = null;
  let downloadUrl = "";

  // <input type="datetime-local"> speaks the browser's local time, without a zone.
  function toLocalInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function presaleState() {
    const o = event.onsale;
    const opens = Date.parse(o.opens_at);
    const presale = o.presale_opens_at ? Date.parse(o.presale_opens_at) : 0;
    const now = Date.now();
    // Once the general sale is open a presale can no longer be set: say so, not "schedule one".
    if (!presale && now >= opens) return "The general sale has opened: everyone is let in, access codes are not needed.";
    if (!presale) return "No presale is scheduled: codes do nothing until one is.";
    if (now >= opens) return "The general sale has opened: the presale is over, codes are no longer needed.";
    if (now >= presale) return `The presale is on: code holders are being let in until ${c.dateTime(o.opens_at)}.`;
    return `The presale opens ${c.dateTime(o.presale_opens_at)}, the general sale ${c.dateTime(o.opens_at)}.`;
  }

  function showEvent(data) {
    event = data;
    const input = $("p-opens");
    const started = event.onsale.presale_opens_at && Date.parse(event.onsale.presale_opens_at) <= Date.now();
    const open = Date.parse(event.onsale.opens_at) <= Date.now();
    if (document.activeElement !== input) input.value = toLocalInput(event.onsale.presale_opens_at);
    input.disabled = Boolean(started || open || event.status === "cancelled");
    $("p-save").disabled = input.disabled;
    c.say("presale-status", presaleState());
    const tiers = $("a-tiers");
    if (!tiers.children.length) {
      tiers.replaceChildren(...event.tiers.map((t) => c.el("label", {},
        c.el("input", { type: "checkbox", name: "tier_ids", value: t.id }), t.name)));
    }
  }

  function tierNames(ids) {
    if (!ids) return "Every tier";
    const byId = Object.fromEntries(event.tiers.map((t) => [t.id, t.name]));
    return ids.map((id) => byId[id] || id).join(", ");
  }

  async function loadCounts() {
    const r = await c.api("GET", `${base}/access-codes`);
    if (r.status !== 200) return c.say("access-total", c.problem(r));
    const s = r.data;
    c.say("access-total", s.codes
      ? `${s.codes.toLocaleString()} code${s.codes === 1 ? "" : "s"}, used ${s.uses.toLocaleString()} time${s.uses === 1 ? "" : "s"}.`
      : "No access codes yet.");
    $("access-body").replaceChildren(...s.batches.map((b) => c.el("tr", {},
      c.el("th", { scope: "row", text: c.dateTime(b.created_at) }),
      c.el("td", { text: b.count.toLocaleString(), "data-label": "Codes" }),
      c.el("td", { text: b.max_uses.toLocaleString(), "data-label": "Buyers per code" }),
      c.el("td", { text: tierNames(b.tier_ids), "data-label": "Tiers" }),
      c.el("td", { text: b.used_codes.toLocaleString(), "data-label": "Codes used" }),
      c.el("td", { text: b.uses.toLocaleString(), "data-label": "Uses" }))));
    c.show($("access-table"), s.batches.length > 0);
  }

  function whole(input, low, high, words) {
    const n = Number(input.value);
    const ok = input.value.trim() !== "" && Number.isInteger(n) && n >= low && n <= high;
    return c.fieldError(input, ok ? "" : words);
  }

  async function generate(e) {
    e.preventDefault();
    c.clearErrors(e.target);
    const count = $("a-count");
    const uses = $("a-uses");
    const ok = [
      whole(count, 1, 5000, "A whole number from 1 to 5,000."),
      whole(uses, 1, 1000000, "A whole number from 1 to 1,000,000."),
    ].every(Boolean);
    if (!ok) return e.target.querySelector("[aria-invalid=true]").focus();
    const body = { count: Number(count.value), max_uses: Number(uses.value) };
    const tiers = [...$("a-tiers").querySelectorAll("input:checked")].map((i) => i.value);
    if (tiers.length) body.tier_ids = tiers;
    const button = $("a-generate");
    button.disabled = true;
    const r = await c.api("POST", `${base}/access-codes`, body);
    button.disabled = false;
    if (r.status !== 201) return c.showError(c.problem(r));
    const text = `${r.data.codes.join("\n")}\n`;
    $("access-codes").value = text;
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    downloadUrl = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    $("access-download").href = downloadUrl;
    $("access-download").download = `access-codes-${eventId.slice(0, 8)}-${r.data.batch_id.slice(0, 8)}.txt`;
    c.say("access-copied", "");
    c.show($("access-new"), true);
    $("access-new-title").focus();
    await loadCounts();
  }

  async function copy() {
    const area = $("access-codes");
    try {
      await navigator.clipboard.writeText(area.value);
    } catch {
      area.select(); // where the clipboard API is refused, the codes are selected to copy
      if (!document.execCommand || !document.execCommand("copy")) {
        return c.say("access-copied", "Copying isn't allowed here: the codes are selected, copy them with your keyboard.");
      }
    }
    c.say("access-copied", "Copied.");
  }

  async function savePresale(e) {
    e.preventDefault();
    const input = $("p-opens");
    c.clearErrors(e.target);
    if (!input.value) return c.fieldError(input, "Choose when the presale opens.") || input.focus();
    const when = new Date(input.value);
    if (Number.isNaN(when.getTime())) return c.fieldError(input, "Not a date and time.") || input.focus();
    const r = await c.api("PATCH", `${base}/onsale`, { presale_opens_at: when.toISOString() });
    if (r.status !== 200) {
      c.fieldError(input, c.problem(r));
      return input.focus();
    }
    showEvent(r.data);
  }

  document.addEventListener("console:ready", async () => {
    c = window.onsaleConsole;
    const r = await c.api("GET", base);
    if (r.status !== 200) return c.show(box, false);
    showEvent(r.data);
    await loadCounts();
    $("access-form").addEventListener("submit", generate);
    $("presale-form").addEventListener("submit", savePresale);
    $("access-copy").addEventListener("click", copy);
    // The presale's state moves on its own (opening): look again now and then.
    setInterval(async () => {
      const again = await c.api("GET", base);
      if (again.status === 200) showEvent(again.data);
      await loadCounts();
    }, 15000);
  });
})();
