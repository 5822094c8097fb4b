// The public verification registry (with reminders and CSV) and the instrument digital twin.
import { api, card, el, failure, section, table, twinLink, when } from "./lib.js";

const FIELDS = [
  ["type", "type (meter type)"], ["manufacturer", "manufacturer"], ["modification", "modification (wiring)"],
  ["serial", "serial number (barcode)"], ["certificate", "certificate number"],
];
const DAYS = [["from", "verified from"], ["to", "verified to"],
  ["valid_until_from", "valid until from"], ["valid_until_to", "valid until to"]];
const PAGE_SIZE = 50;

function query(form, page) {
  const q = new URLSearchParams();
  for (const [name, value] of new FormData(form)) if (value) q.set(name, value);
  q.set("page", String(page));
  q.set("limit", String(PAGE_SIZE));
  return q.toString();
}

async function showPage(form, box, page) {
  const q = query(form, page);
  const found = await api(`/v1/registry?${q}`);
  const pages = Math.max(1, Math.ceil(found.total / PAGE_SIZE));
  box.replaceChildren(
    el("div", { class: "pager" },
      el("span", { id: "registry-total" }, `${found.total} results, page ${found.page} of ${pages}`),
      el("button", { type: "button", disabled: page <= 1, onclick: () => showPage(form, box, page - 1) }, "‹ previous"),
      el("button", { type: "button", disabled: page >= pages, onclick: () => showPage(form, box, page + 1) }, "next ›"),
      el("a", { href: `/v1/registry.csv?${q}`, id: "registry-csv", download: "registry.csv" }, "download this page as CSV")),
    el("div", { class: "scroll" }, table([
      { title: "serial (barcode)", value: e => twinLink(e.barcode) },
      { title: "type", value: e => e.meter_type }, { title: "manufacturer", value: e => e.manufacturer },
      { title: "modification", value: e => e.wiring }, { title: "verified", value: e => e.date },
      { title: "kind", value: e => e.kind }, { title: "result", value: e => e.result },
      { title: "valid until", value: e => e.valid_until || "–" },
      { title: "certificate", value: e => e.certificate_no || "–" },
      { title: "institution", value: e => e.institution }, { title: "owner", value: e => e.owner },
    ], found.entries, { id: "registry", empty: "no record matches" })));
}

async function showReminders(box, owner) {
  const found = await api(`/v1/registry/reminders?owner=${encodeURIComponent(owner)}`);
  box.replaceChildren(table([
    { title: "meter", value: r => twinLink(r.barcode) },
    { title: "detail", value: r => show(r), class: () => "wrap" },
  ], found.reminders, { id: "reminders", empty: `no reminder for ${owner}` }));
}

export async function registryPage(root) {
  const results = el("div", { id: "registry-results" });
  const form = el("form", { class: "search", id: "registry-search" },
    FIELDS.map(([name, label]) => el("label", {}, label, el("input", { name, maxlength: 200 }))),
    DAYS.map(([name, label]) => el("label", {}, label, el("input", { name, type: "date" }))),
    el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", event => {
    event.preventDefault();
    showPage(form, results, 1).catch(e => results.replaceChildren(failure(e)));
  });
  const reminders = el("div", { id: "reminder-results" });
  const owner = el("input", { name: "owner", placeholder: "owning unit, e.g. Tianjin" });
  const ask = el("form", { class: "search", id: "reminder-search" }, el("label", {}, "owner", owner),
    el("button", { type: "submit" }, "Show reminders"));
  ask.addEventListener("submit", event => {
    event.preventDefault();
    showReminders(reminders, owner.value).catch(e => reminders.replaceChildren(failure(e)));
  });
  root.replaceChildren(el("h2", {}, "Public verification registry"),
    el("p", { class: "muted" }, "Every public verification result on the ledger with its valid-until date."),
    form, results, section("Reminders before validity runs out", ask, reminders));
  await showPage(form, results, 1);
}

function pairs(object) {
  return el("dl", { class: "kv" }, Object.entries(object || {}).filter(([, v]) => v !== undefined).flatMap(([k, v]) => [
    el("dt", {}, k),
    el("dd", {}, show(v))]));
}

function show(value) {
  if (value === null || value === undefined) return "–";
  if (Array.isArray(value)) return value.map(show).join(", ") || "none";
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${show(v)}`).join("; ");
  return String(value);
}

function approvalView(approval, running) {
  if (!approval) return el("p", { class: "muted" }, "no type approval of this model on the ledger");
  const software = approval.approved_software;
  return el("div", { id: "type-approval" }, pairs({ approval_no: approval.approval_no,
    accuracy_class: approval.accuracy_class, approved_at: `block ${approval.approved_at}` }),
  el("p", {}, software.length ? "approved legally relevant software (hash):" : "no software fixed: readings unchecked"),
  el("ul", {}, software.map(h => el("li", {}, el("code", {}, h), h === running ? " ← its last reading" : ""))),
  el("p", { class: "muted" }, `${approval.history.length} version(s) of this approval`));
}

export async function twinPage(root, params) {
  const id = params[0] ? decodeURIComponent(params[0]) : "";
  const input = el("input", { name: "id", value: id, placeholder: "serial, barcode or device id", size: 30 });
  const open = el("form", { class: "search", id: "twin-open" }, el("label", {}, "instrument", input),
    el("button", { type: "submit" }, "Open"));
  open.addEventListener("submit", event => {
    event.preventDefault();
    location.hash = `#/twin/${encodeURIComponent(input.value.trim())}`;
  });
  root.replaceChildren(el("h2", {}, "Digital twin"), open);
  if (!id) {
    root.append(el("p", { class: "muted" }, "Open an instrument by its id; every id on the other pages links here."));
    return;
  }
  let twin;
  try { twin = await api(`/v1/twins/${encodeURIComponent(id)}`); } catch (e) { root.append(failure(e)); return; }
  const inst = twin.instance;
  root.append(
    el("div", { class: "cards" }, card("instrument", twin.id, "twin-id"), card("kind", twin.type.device_kind),
      card("device status", inst.device_status), card("asset status", inst.asset_status),
      card("readings", inst.readings), card("valid until", inst.valid_until)),
    el("div", { class: "grid" }, section("Type", pairs({ ...twin.type, type_approval: undefined })),
      section("Type approval", approvalView(twin.type.type_approval, inst.software_hash)),
      section("Instance", pairs(inst)),
      section("Who is authorised for what", pairs(twin.authorised)),
      section("Work orders", table([
        { title: "order", value: o => o.order }, { title: "kind", value: o => o.kind },
        { title: "status", value: o => o.status }], twin.work_orders, { empty: "none" }))),
    section("Full log", table([
      { title: "block / time", value: e => e.height !== undefined ? `block ${e.height}` : when(e.time_ms) },
      { title: "event", value: e => e.event }, { title: "detail", value: e => e.detail },
    ], twin.log, { id: "twin-log" })));
}

