// Meter verification supervision (§6.3.1) and calibration and replacement (§6.4).
import { api, card, duration, el, failure, pct, section, statusClass, table, twinLink, when } from "./lib.js";
import { barChart } from "./charts.js";

const rate = part => part.pass_rate_ppm === null ? null : part.pass_rate_ppm / 10_000;

function totals(rows, part) {
  const records = rows.reduce((a, r) => a + r[part].records, 0);
  const passed = rows.reduce((a, r) => a + r[part].passed, 0);
  return { records, passed, pass_rate_ppm: records ? Math.floor(passed * 1e6 / records) : null };
}

async function showTask(box, task) {
  const found = await api(`/v1/meter/tasks/${encodeURIComponent(task)}`);
  const batch = await api(`/v1/meter/batches/${encodeURIComponent(found.batch)}`).catch(() => null);
  box.replaceChildren(el("h3", {}, `Sampling task ${task}`), el("dl", { class: "kv" },
    el("dt", {}, "batch"), el("dd", {}, found.batch),
    el("dt", {}, "plan"), el("dd", {}, JSON.stringify(found.plan)),
    el("dt", {}, "drawn from the chain (seed)"), el("dd", {}, el("code", {}, found.seed)),
    el("dt", {}, "status"), el("dd", {}, found.status),
    el("dt", {}, "re-check result"), el("dd", { id: "task-result" }, JSON.stringify(found.result ?? "pending")),
    el("dt", {}, "batch first verification"), el("dd", {}, batch ? batch.status : "–"),
    el("dt", {}, "disagreements"), el("dd", {}, batch ? String(batch.disagreements.length) : "–")),
  el("p", {}, "meters drawn: ", ...found.barcodes.slice(0, 40).flatMap(b => [twinLink(b), " "]),
    found.barcodes.length > 40 ? `… (${found.barcodes.length})` : ""));
}

export async function verificationPage(root) {
  const [ov, { tasks }] = await Promise.all([api("/v1/meter/overview"), api("/v1/meter/tasks")]);
  const full = totals(ov.institutions, "full"), sampling = totals(ov.institutions, "sampling");
  const detail = el("div", { class: "panel", id: "task-detail" },
    el("p", { class: "muted" }, "Click a sampling task for its plan, draw and re-check."));
  const pick = t => showTask(detail, t.task).catch(e => detail.replaceChildren(failure(e)));
  const series = ["full inspection", "sampling"];
  root.replaceChildren(
    el("h2", {}, "Meter verification supervision"),
    el("div", { class: "cards" },
      card("full-inspection records", full.records, "card-full"),
      card("full-inspection pass rate", pct(full.pass_rate_ppm, 1)),
      card("sampling records", sampling.records), card("sampling pass rate", pct(sampling.pass_rate_ppm, 1)),
      card("institutions", ov.institutions.length), card("batches", ov.batches.length)),
    el("div", { class: "grid" },
      section("Pass rate by institution", barChart(ov.institutions.map(i =>
        ({ name: i.id, values: [rate(i.full), rate(i.sampling)] })), series, { title: "pass rate", id: "chart-institutions" })),
      section("Batch comparison", barChart(ov.batches.map(b =>
        ({ name: b.id, values: [rate(b.full), rate(b.sampling)] })), series, { title: "pass rate", id: "chart-batches" }))),
    el("div", { class: "grid" },
      section("Top 10 failing items", table([
        { title: "item", value: r => r.tableName },
        { title: "table", value: r => r.tableCode },
        { title: "failures", value: r => r.failures, num: true },
      ], ov.top_failing_items.slice(0, 10), { id: "top-items", empty: "no failing item" })),
      section("Sampling tasks", table([
        { title: "task", value: t => t.task },
        { title: "batch", value: t => t.batch },
        { title: "mode", value: t => t.mode },
        { title: "plan", value: t => `n=${t.plan.sample_size} Ac=${t.plan.accept} Re=${t.plan.reject}` },
        { title: "status", value: t => t.status },
        { title: "re-check", value: t => t.result === null || t.result === undefined ? "pending" : JSON.stringify(t.result) },
      ], tasks, { id: "tasks", onRow: pick, empty: "no sampling task" }))),
    detail,
    section("Batches", table([
      { title: "batch", value: b => b.id },
      { title: "full: records", value: b => b.full.records, num: true },
      { title: "full: pass", value: b => pct(b.full.pass_rate_ppm, 1), num: true },
      { title: "sampling: records", value: b => b.sampling.records, num: true },
      { title: "sampling: pass", value: b => pct(b.sampling.pass_rate_ppm, 1), num: true },
    ], ov.batches, { id: "batches" })));
}

const ORDERS_SHOWN = 500, NUMBERED_SHOWN = 200;

// the last NUMBERED_SHOWN of a list numbered from 1 (alerts, anomalies)
async function lastNumbered(path) {
  const { total } = await api(`${path}?limit=1`);
  return api(`${path}?from=${Math.max(1, total - NUMBERED_SHOWN + 1)}&limit=${NUMBERED_SHOWN}`);
}
const ALERT_NAMES = { overdue_unaccepted: "not accepted in time", overdue_unprocessed: "not processed in time",
  customer_unsatisfied: "customer unsatisfied" };

function alertRow(a, live) {
  return el("tr", { class: live ? "live" : null, "data-n": a.n },
    el("td", { class: "num" }, a.n), el("td", { class: "bad" }, ALERT_NAMES[a.alert] || a.alert),
    el("td", {}, a.order), el("td", {}, a.kind), el("td", {}, twinLink(a.barcode)),
    el("td", {}, when(a.time_ms)));
}

function areaTiles(orders) {
  const byArea = {};
  for (const o of orders) (byArea[o.model?.area || "no area"] ||= []).push(o);
  return el("div", { class: "cards", id: "order-map" }, Object.entries(byArea).sort().map(([area, list]) =>
    el("div", { class: "card" }, el("div", { class: "label" }, `transformer area ${area}`),
      el("div", {}, list.map(o => el("span", { class: statusClass(o.status === "evaluated" ? "cleared" : "undecided"),
        title: `${o.order} ${o.kind} ${o.status}` }, "● "))),
      el("div", { class: "label" }, `${list.length} orders, ${list.filter(o => o.status !== "evaluated").length} open`))));
}

function orderDetail(box, o) {
  box.replaceChildren(el("h3", {}, `Work order ${o.order} (${o.kind})`), el("dl", { class: "kv" },
    el("dt", {}, "meter"), el("dd", {}, twinLink(o.barcode)),
    el("dt", {}, "status"), el("dd", {}, o.status),
    el("dt", {}, "model"), el("dd", {}, `${o.model?.verdict} ${pct(o.model?.error_ppm)} ± ${pct(o.model?.stderr_ppm)}`),
    ...["created", "accepted", "processed", "visited", "evaluated"].flatMap(step =>
      [el("dt", {}, step), el("dd", {}, when(o[`${step}_ms`]))]),
    el("dt", {}, "verification result"), el("dd", {}, o.result || "–"),
    el("dt", {}, "satisfaction"), el("dd", {}, o.satisfaction || "–"),
    el("dt", {}, "staff"), el("dd", {}, o.staff.map(s => `${s.step}: ${s.staff}`).join(", ") || "–"),
    el("dt", {}, "alerts"), el("dd", {}, o.alerts.join(", ") || "none")));
}

export async function servicePage(root, params, ctx) {
  const [k, { total: orderCount, orders }, alerts, anomalies] = await Promise.all([api("/v1/meter/kpis"),
    api(`/v1/meter/work_orders?limit=${ORDERS_SHOWN}`), lastNumbered("/v1/meter/alerts"), lastNumbered("/v1/meter/anomalies")]);
  const c = k.calibration, r = k.replacement;
  const detail = el("div", { class: "panel", id: "order-detail" },
    el("p", { class: "muted" }, "Click a work order for its steps."));
  const alertBody = el("tbody", {}, alerts.items.slice().reverse().map(a => alertRow(a, false)));
  const seen = new Set(alerts.items.map(a => a.n));
  const alertCount = el("span", { id: "alert-count" }, String(alerts.total));
  root.replaceChildren(
    el("h2", {}, "Calibration and replacement"),
    el("h3", {}, "User active calibration (§6.4.1)"),
    el("div", { class: "cards" }, card("total", c.total, "card-cal-total"), card("in progress", c.in_progress),
      card("done", c.done), card("average handling time", duration(c.mean_handling_ms))),
    el("h3", {}, "Out-of-tolerance replacement (§6.2)"),
    el("div", { class: "cards" }, card("model verdicts", r.verdicts), card("orders opened", r.opened),
      card("conversion rate", pct(r.conversion_rate_ppm, 0)), card("accuracy", pct(r.accuracy_ppm, 0)),
      card("timely handling", pct(r.timely_rate_ppm, 0)), card("overdue", r.overdue)),
    section(`Alerts (§6.4.2): `, alertCount, " raised; new ones appear here as they commit",
      el("table", { id: "alerts" }, el("thead", {}, el("tr", {},
        ["#", "alert", "order", "kind", "meter", "block time"].map(t => el("th", {}, t)))), alertBody)),
    section("Work orders by transformer area (schematic: areas carry no coordinates)"
      + (orderCount > orders.length ? `, of the last ${orders.length}` : ""), areaTiles(orders)),
    section(orderCount > orders.length ? `Work orders: the last ${orders.length} of ${orderCount}`
      : "Work orders", el("div", { class: "scroll" }, table([
      { title: "order", value: o => o.order }, { title: "kind", value: o => o.kind },
      { title: "meter", value: o => o.barcode }, { title: "area", value: o => o.model?.area || "–" },
      { title: "status", value: o => o.status }, { title: "created", value: o => when(o.created_ms) },
      { title: "alerts", value: o => o.alerts.join(", ") },
    ], orders, { id: "orders", onRow: o => orderDetail(detail, o) }))),
    detail,
    section("Anomalies for the regulator (§6.1.3)", table([
      { title: "#", value: a => a.n, num: true }, { title: "meter", value: a => twinLink(a.barcode || "") },
      { title: "request", value: a => a.request }, { title: "area", value: a => a.area },
      { title: "model", value: a => `${a.verdict} ${pct(a.error_ppm)} ± ${pct(a.stderr_ppm)}` },
      { title: "block time", value: a => when(a.time_ms) },
    ], anomalies.items, { id: "anomalies", empty: "no anomaly" })));
  const stream = new EventSource("/v1/events/stream?name=work_order_alert");
  stream.addEventListener("work_order_alert", message => {
    const a = JSON.parse(message.data).data;
    if (seen.has(a.n)) return;
    seen.add(a.n);
    alertBody.prepend(alertRow(a, true));
    alertCount.textContent = String(Math.max(Number(alertCount.textContent), a.n));
  });
  ctx.onLeave(() => stream.close());
}
