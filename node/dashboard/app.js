// The dashboard's router: #/page/arg picks a page; leaving a page stops its timers and
// live streams.
import { api, el, failure } from "./lib.js";
import { fuelPage, networkPage } from "./pages_ledger.js";
import { servicePage, verificationPage } from "./pages_meter.js";
import { registryPage, twinPage } from "./pages_public.js";

const PAGES = { network: networkPage, fuel: fuelPage, verification: verificationPage,
  service: servicePage, registry: registryPage, twin: twinPage };
let leaving = [];

function context() {
  return {
    every(ms, fn) { const t = setInterval(fn, ms); leaving.push(() => clearInterval(t)); },
    onLeave(fn) { leaving.push(fn); },
  };
}

async function show() {
  for (const fn of leaving) fn();
  leaving = [];
  const [name, ...params] = location.hash.replace(/^#\/?/, "").split("/");
  const page = PAGES[name] ? name : "network";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${page}`);
  }
  const root = document.getElementById("page");
  root.replaceChildren(el("p", { class: "muted" }, "loading…"));
  root.dataset.page = page;
  root.dataset.ready = "no";
  try {
    await PAGES[page](root, params, context());
  } catch (error) {
    root.append(failure(error));
  }
  root.dataset.ready = "yes";
}

window.addEventListener("hashchange", show);
api("/v1/status").then(s => {
  document.getElementById("node-name").textContent = `${s.name} · height ${s.height}`;
}).catch(() => {});
show();
