// The network page and the fuel surveillance page.
import { api, card, el, failure, link, pct, section, statusClass, table, twinLink } from "./lib.js";
import { intervalPlot, lineChart, mapPlot, stripPlot } from "./charts.js";

async function memberStatus(member) {
  if (!member.api) return null;
  try {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 1500);
    const answer = await fetch(`${member.api}/v1/status`, { signal: controller.signal });
    clearTimeout(timer);
    return answer.ok ? await answer.json() : null;
  } catch (e) {
    return null;
  }
}

async function drawNetwork(box) {
  const [status, members, history] = await Promise.all([
    api("/v1/status"), api("/v1/members"), api("/v1/network/history")]);
  const statuses = await Promise.all(members.roster.map(memberStatus));
  const samples = history.samples;
  const recent = samples.slice(-60);
  const rate = recent.length ? recent.reduce((a, s) => a + s.txs_per_s, 0) / recent.length : 0;
  const refusedRecent = {};
  for (const s of samples) for (const [k, v] of Object.entries(s.refused)) refusedRecent[k] = (refusedRecent[k] || 0) + v;
  const rows = members.roster.map((m, i) => ({ ...m, status: statuses[i] }));
  const rootOf = r => r.status ? r.status.state_root.slice(0, 16) : "–";
  box.replaceChildren(
    el("div", { class: "cards" },
      card("this node", status.name, "card-node"), card("height", status.height, "card-height"),
      card("view", status.view), card("primary", `member ${status.primary}`),
      card("peers connected", `${status.peers_connected} of ${members.members.length - 1}`),
      card("mempool", status.mempool_size), card("committed tx/s (last minute)", rate.toFixed(1)),
      card("view changes since start", history.view_changes_total)),
    section(`Members (epoch ${members.epoch}, chain ${status.chain_id})`, table([
      { title: "#", value: r => r.index, num: true },
      { title: "name", value: r => r.name },
      { title: "role", value: r => r.role },
      { title: "API", value: r => r.api },
      { title: "height", value: r => r.status ? r.status.height : "unreachable", num: true },
      { title: "view", value: r => r.status ? r.status.view : "–", num: true },
      { title: "peers", value: r => r.status ? r.status.peers_connected : "–", num: true },
      { title: "state root", value: r => el("code", {}, rootOf(r)) },
      { title: "in view", value: r => members.members.includes(r.index) ? "active" : "–" },
    ], rows, { id: "members" })),
    el("div", { class: "grid" },
      section("Committed transactions",
        lineChart(samples.map(s => [s.time_s, s.txs_per_s]), { title: "tx/s", id: "chart-tps" })),
      section("Commit latency (admission here to commit, mean per second)",
        lineChart(samples.map(s => [s.time_s, s.latency_ms]), { title: "latency", unit: "ms", id: "chart-latency" })),
      section("View changes",
        lineChart(samples.map(s => [s.time_s, s.view]), { title: "view" }),
        el("p", {}, `${history.view_changes_total} view changes since this node started; `,
          `${samples.reduce((a, s) => a + s.view_changes, 0)} in the last ${samples.length} s.`)),
      section("Refusals by reason", table([
        { title: "reason", value: r => r[0] },
        { title: "since start", value: r => r[1], num: true },
        { title: `last ${samples.length} s`, value: r => refusedRecent[r[0]] || 0, num: true },
      ], Object.entries(history.refused_total), { id: "refusals", empty: "none refused" }))));
}

export async function networkPage(root, params, ctx) {
  const box = el("div", { id: "network" });
  root.replaceChildren(el("h2", {}, "Network"), box);
  const draw = () => drawNetwork(box).catch(e => box.replaceChildren(failure(e)));
  await draw();
  ctx.every(2000, draw);
}

const ORDER = { suspect: 0, undecided: 1, cleared: 2 };

function stationPlaces(stations, byId) {
  return stations.filter(s => s.lat_e6 !== null).map(s => {
    const statuses = s.dispensers.map(d => byId[d]?.status);
    const bad = statuses.includes("suspect"), open = statuses.includes("undecided");
    return { name: s.station_id, lat: s.lat_e6 / 1e6, lon: s.lon_e6 / 1e6,
      color: bad ? "#c0392b" : open ? "#b9770e" : "#1e8449",
      title: `${s.station_id}: ${s.dispensers.map(d => `${d} ${byId[d]?.status}`).join(", ")}` };
  });
}

async function showEvidence(box, d, tolerance) {
  box.replaceChildren(el("p", { class: "muted" }, "loading evidence…"));
  const { votes } = await api(`/v1/dispensers/${encodeURIComponent(d.dispenser_id)}/votes`);
  const counted = votes.filter(v => v.vote_ppm !== null && !v.suspected_colluder);
  const verdict = d.changed_at_readings
    ? `suspect: the change test found it short-delivering from about reading ${d.changed_at_readings} on`
    : d.status === "suspect"
    ? `suspect: even the interval's upper end (${pct(d.interval_ppm[1])}) is below −${pct(tolerance)}`
    : d.status === "cleared"
      ? `cleared: the interval's lower end (${pct(d.interval_ppm[0])}) is above −${pct(tolerance)}`
      : "undecided: the interval still straddles the tolerance";
  box.replaceChildren(
    el("h3", {}, `Evidence for ${d.dispenser_id}`),
    el("p", { id: "verdict" }, `${verdict}; ${d.readings} readings, ${d.vehicles} vehicles voting`,
      d.flagged_at_readings ? `, flagged after ${d.flagged_at_readings} readings` : ""),
    stripPlot(counted.map(v => v.vote_ppm), { mean: d.estimate_ppm, lower: d.interval_ppm[0],
      upper: d.interval_ppm[1], id: "votes-plot" }),
    el("div", { class: "scroll" }, table([
      { title: "vehicle", value: v => twinLink(v.vehicle_id) },
      { title: "vote", value: v => pct(v.vote_ppm), num: true },
      { title: "readings here", value: v => v.readings, num: true },
      { title: "", value: v => v.suspected_colluder ? "suspected colluder: not counted" : "",
        class: v => v.suspected_colluder ? "bad" : null },
    ], votes, { id: "votes" })));
}

export async function fuelPage(root, params, ctx) {
  const [list, { stations }, suspected] = await Promise.all([
    api("/v1/dispensers"), api("/v1/stations"), api("/v1/events?name=vehicle_suspected&limit=1000")]);
  const dispensers = list.dispensers.slice().sort((a, b) =>
    ORDER[a.status] - ORDER[b.status] || a.estimate_ppm - b.estimate_ppm);
  const byId = Object.fromEntries(dispensers.map(d => [d.dispenser_id, d]));
  const count = s => dispensers.filter(d => d.status === s).length;
  const evidence = el("div", { class: "panel", id: "evidence" },
    el("p", { class: "muted" }, "Click a dispenser (or a station on the map) for the evidence behind its verdict."));
  const pick = (d, tr) => {
    document.querySelectorAll("#dispensers tr.selected").forEach(r => r.classList.remove("selected"));
    tr?.classList.add("selected");
    showEvidence(evidence, d, list.tolerance_ppm).catch(e => evidence.replaceChildren(failure(e)));
  };
  const places = stationPlaces(stations, byId);
  const unplaced = stations.filter(s => s.lat_e6 === null).map(s => s.station_id);
  root.replaceChildren(
    el("h2", {}, "Fuel surveillance"),
    el("div", { class: "cards" }, card("dispensers", dispensers.length),
      card("suspect", count("suspect"), "card-suspect"), card("undecided", count("undecided")),
      card("cleared", count("cleared")), card("suspected vehicles", suspected.events.length),
      card("tolerance", `−${pct(list.tolerance_ppm)}`)),
    el("div", { class: "grid" },
      section("Stations", places.length
        ? mapPlot(places, { id: "map", onClick: p => {
          const first = stations.find(s => s.station_id === p.name).dispensers
            .map(id => byId[id]).filter(Boolean).sort((a, b) => ORDER[a.status] - ORDER[b.status])[0];
          if (first) pick(first, null);
        } })
        : el("p", { class: "muted" }, "no station has coordinates in the genesis configuration"),
        unplaced.length ? el("p", { class: "muted" }, `not on the map (no coordinates): ${unplaced.join(", ")}`) : null),
      section("Estimates", intervalPlot(dispensers.map(d => ({ name: d.dispenser_id,
        estimate: d.estimate_ppm, lower: d.interval_ppm[0], upper: d.interval_ppm[1], status: d.status })),
      list.tolerance_ppm, { id: "intervals" }))),
    section("Dispensers, suspects first", el("div", { class: "scroll" }, table([
      { title: "dispenser", value: d => d.dispenser_id },
      { title: "station", value: d => d.station_id || "–" },
      { title: "status", value: d => d.status, class: d => statusClass(d.status) },
      { title: "estimate", value: d => pct(d.estimate_ppm), num: true },
      { title: "interval", value: d => `[${pct(d.interval_ppm[0])}, ${pct(d.interval_ppm[1])}]`, num: true },
      { title: "readings", value: d => d.readings, num: true },
      { title: "vehicles", value: d => d.vehicles, num: true },
      { title: "flagged after", value: d => d.flagged_at_readings ?? "–", num: true },
    ], dispensers, { id: "dispensers", onRow: pick }))),
    evidence,
    section("Suspected colluding vehicles", table([
      { title: "vehicle", value: e => twinLink(e.data.vehicle_id) },
      { title: "block", value: e => link(`/v1/blocks/${e.height}`, e.height), num: true },
      { title: "detail", value: e => JSON.stringify(e.data), class: () => "wrap" },
    ], suspected.events, { id: "suspected", empty: "no vehicle suspected" })));
}
