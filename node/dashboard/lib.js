// Small helpers every page uses: reading the API, building elements (text only, never
// HTML from data), tables, cards and number formats.

export async function api(path, base = "") {
  const answer = await fetch(base + path, { headers: { accept: "application/json" } });
  if (!answer.ok) {
    let detail = answer.statusText;
    try { const body = await answer.json(); detail = `${body.error}: ${body.detail}`; } catch (e) {}
    throw new Error(`${path}: ${answer.status} ${detail}`);
  }
  return answer.json();
}

// el("td", {class: "num"}, "12"): attributes, then children (strings become text nodes)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function card(label, value, id) {
  return el("div", { class: "card", id },
    el("div", { class: "value" }, value ?? "–"), el("div", { class: "label" }, label));
}

// columns: [{title, value: row => text|Node, num: bool}]; onRow(row, tr) makes rows clickable
export function table(columns, rows, { id, onRow, empty = "nothing yet" } = {}) {
  const head = el("tr", {}, columns.map(c => el("th", { class: c.num ? "num" : null }, c.title)));
  const body = rows.length === 0
    ? [el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, empty))]
    : rows.map(row => {
      const tr = el("tr", { class: onRow ? "clickable" : null },
        columns.map(c => el("td", { class: c.num ? "num" : c.class?.(row) }, c.value(row))));
      if (onRow) tr.addEventListener("click", () => onRow(row, tr));
      return tr;
    });
  return el("table", { id }, el("thead", {}, head), el("tbody", {}, body));
}

export function link(href, text) { return el("a", { href }, text); }

export function twinLink(id) { return link(`#/twin/${encodeURIComponent(id)}`, id); }

export function section(title, ...children) {
  return el("div", { class: "panel" }, el("h3", {}, title), ...children);
}

export function failure(error) {
  return el("p", { class: "error" }, String(error.message || error));
}

// parts per million as a percentage: 12345 -> "1.23 %"
export function pct(ppm, digits = 2) {
  return ppm === null || ppm === undefined ? "–" : `${(ppm / 10_000).toFixed(digits)} %`;
}

export function when(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–";
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}

export function statusClass(status) { return `status-${status}`; }
