// SVG plots drawn here (no chart library): a line over time, grouped bars, estimates with
// intervals, points on a map by coordinates, and votes on one axis.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function range(values) {
  const finite = values.filter(v => Number.isFinite(v));
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (lo === hi) { lo -= 1; hi += 1; }
  return [lo, hi];
}

function ticks([lo, hi], count = 4) {
  const step = (hi - lo) / count;
  return Array.from({ length: count + 1 }, (_, i) => lo + i * step);
}

function label(value) {
  const a = Math.abs(value);
  return a >= 1000 ? value.toFixed(0) : a >= 10 ? value.toFixed(1) : value.toFixed(2);
}

// points: [[x, y|null]]; x is seconds; one line, gaps where y is null
export function lineChart(points, { title, unit = "", width = 560, height = 180, id } = {}) {
  const pad = { l: 48, r: 10, t: 18, b: 22 };
  const [x0, x1] = range(points.map(p => p[0]));
  const [, yHi] = range(points.map(p => p[1]).concat([0]));
  const X = x => pad.l + (x - x0) / (x1 - x0) * (width - pad.l - pad.r);
  const Y = y => height - pad.b - y / (yHi || 1) * (height - pad.t - pad.b);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", id });
  root.append(svg("text", { x: pad.l, y: 12 }, `${title}${unit ? ` (${unit})` : ""}`));
  for (const t of ticks([0, yHi || 1])) {
    root.append(svg("line", { x1: pad.l, x2: width - pad.r, y1: Y(t), y2: Y(t), class: "gridline" }));
    root.append(svg("text", { x: pad.l - 4, y: Y(t) + 4, "text-anchor": "end" }, label(t)));
  }
  let path = "", pen = false;
  for (const [x, y] of points) {
    if (y === null || y === undefined) { pen = false; continue; }
    path += `${pen ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
    pen = true;
  }
  root.append(svg("path", { d: path || "M0,0", fill: "none", stroke: "#2457a7", "stroke-width": 1.6 }));
  const span = Math.round(x1 - x0);
  root.append(svg("text", { x: pad.l, y: height - 6 }, `last ${span} s`));
  if (points.length === 0) root.append(svg("text", { x: width / 2, y: height / 2 }, "no samples yet"));
  return root;
}

// groups: [{name, values: [number|null]}], series: names of the values (a legend)
export function barChart(groups, series, { title, unit = "%", max = 100, width = 560, id } = {}) {
  const rowH = 14 * series.length + 8, pad = { l: 120, r: 50, t: 24 };
  const height = pad.t + rowH * groups.length + 8;
  const colors = ["#2457a7", "#e08e0b", "#1e8449", "#8e44ad"];
  const W = v => (v / max) * (width - pad.l - pad.r);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", id });
  root.append(svg("text", { x: 0, y: 12 }, title));
  series.forEach((s, i) => {
    root.append(svg("rect", { x: pad.l + i * 110, y: 4, width: 10, height: 10, fill: colors[i] }));
    root.append(svg("text", { x: pad.l + 14 + i * 110, y: 13 }, s));
  });
  groups.forEach((g, gi) => {
    const y = pad.t + gi * rowH;
    root.append(svg("text", { x: pad.l - 6, y: y + rowH / 2 + 3, "text-anchor": "end" }, g.name));
    g.values.forEach((v, i) => {
      const yy = y + 4 + i * 14;
      if (v === null || v === undefined) {
        root.append(svg("text", { x: pad.l + 4, y: yy + 10, class: "muted" }, "none"));
        return;
      }
      root.append(svg("rect", { x: pad.l, y: yy, width: Math.max(W(v), 1), height: 11, fill: colors[i] }));
      root.append(svg("text", { x: pad.l + W(v) + 4, y: yy + 10 }, `${v.toFixed(1)}${unit}`));
    });
  });
  return root;
}

// rows: [{name, estimate, lower, upper, status}] in ppm; a dashed line at -tolerance
export function intervalPlot(rows, toleranceppm, { width = 560, id } = {}) {
  const rowH = 16, pad = { l: 90, r: 14, t: 22, b: 22 };
  const height = pad.t + rowH * rows.length + pad.b;
  const [lo, hi] = range(rows.flatMap(r => [r.lower, r.upper]).concat([0, -(toleranceppm || 0)]));
  const X = v => pad.l + (v - lo) / (hi - lo) * (width - pad.l - pad.r);
  const color = { suspect: "#c0392b", cleared: "#1e8449", undecided: "#b9770e" };
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", id });
  root.append(svg("text", { x: pad.l, y: 12 }, "delivery error estimate and interval (%)"));
  for (const t of ticks([lo, hi])) {
    root.append(svg("line", { x1: X(t), x2: X(t), y1: pad.t, y2: height - pad.b, class: "gridline" }));
    root.append(svg("text", { x: X(t), y: height - 6, "text-anchor": "middle" }, (t / 10000).toFixed(1)));
  }
  root.append(svg("line", { x1: X(0), x2: X(0), y1: pad.t, y2: height - pad.b, class: "axis" }));
  if (toleranceppm) {
    root.append(svg("line", { x1: X(-toleranceppm), x2: X(-toleranceppm), y1: pad.t,
      y2: height - pad.b, stroke: "#c0392b", "stroke-dasharray": "4 3" }));
  }
  rows.forEach((r, i) => {
    const y = pad.t + i * rowH + rowH / 2;
    root.append(svg("text", { x: pad.l - 6, y: y + 4, "text-anchor": "end" }, r.name));
    root.append(svg("line", { x1: X(r.lower), x2: X(r.upper), y1: y, y2: y, stroke: color[r.status], "stroke-width": 2 }));
    root.append(svg("circle", { cx: X(r.estimate), cy: y, r: 3.5, fill: color[r.status] }));
  });
  return root;
}

// places: [{name, lat, lon (degrees), color, title}]; equirectangular over their box
export function mapPlot(places, { width = 560, height = 320, id, onClick } = {}) {
  const pad = 30;
  const [lat0, lat1] = range(places.map(p => p.lat));
  const [lon0, lon1] = range(places.map(p => p.lon));
  const k = Math.min((width - 2 * pad) / (lon1 - lon0), (height - 2 * pad) / (lat1 - lat0));
  const X = lon => pad + (lon - lon0) * k, Y = lat => height - pad - (lat - lat0) * k;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", id });
  root.append(svg("rect", { x: 0, y: 0, width, height, fill: "#eef3f8" }));
  root.append(svg("text", { x: 6, y: 14 },
    `${lat0.toFixed(3)}…${lat1.toFixed(3)}° N, ${lon0.toFixed(3)}…${lon1.toFixed(3)}° E`));
  for (const p of places) {
    const dot = svg("circle", { cx: X(p.lon), cy: Y(p.lat), r: p.r || 7, fill: p.color,
      stroke: "#fff", "stroke-width": 1.5, "data-name": p.name },
      svg("title", {}, p.title || p.name));
    if (onClick) { dot.style.cursor = "pointer"; dot.addEventListener("click", () => onClick(p)); }
    root.append(dot);
    root.append(svg("text", { x: X(p.lon) + 9, y: Y(p.lat) + 4 }, p.name));
  }
  return root;
}

// values in ppm on one axis, with a mean and its interval drawn over them
export function stripPlot(values, { mean, lower, upper, width = 560, height = 90, id } = {}) {
  const pad = { l: 20, r: 20 };
  const [lo, hi] = range(values.concat([lower, upper, 0].filter(Number.isFinite)));
  const X = v => pad.l + (v - lo) / (hi - lo) * (width - pad.l - pad.r);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", id });
  root.append(svg("text", { x: pad.l, y: 12 }, "votes of the vehicles (bias-corrected error, %)"));
  values.forEach((v, i) => root.append(svg("circle", { cx: X(v), cy: 30 + (i % 5) * 7, r: 3,
    fill: "#2457a7", "fill-opacity": 0.6 })));
  if (Number.isFinite(mean)) {
    root.append(svg("line", { x1: X(lower), x2: X(upper), y1: 72, y2: 72, stroke: "#c0392b", "stroke-width": 3 }));
    root.append(svg("circle", { cx: X(mean), cy: 72, r: 4, fill: "#c0392b" }));
  }
  root.append(svg("line", { x1: X(0), x2: X(0), y1: 20, y2: 80, class: "axis" }));
  for (const t of ticks([lo, hi])) {
    root.append(svg("text", { x: X(t), y: height - 2, "text-anchor": "middle" }, (t / 10000).toFixed(1)));
  }
  return root;
}
