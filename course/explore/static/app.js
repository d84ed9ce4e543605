// The explorer page: three views, each controls -> api(...) -> SVG. This file holds what the
// views share (drawing helpers, the API or the static files, the tabs) and the optimizers view;
// schedules.js and scaling.js add the other two. Everything is drawn with plain SVG.
"use strict";

// null when served by `course explore`; the grid of precomputed answers in a --build folder
const STATIC = window.EXPLORE_STATIC || null;

const SVGNS = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a download
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];
const HYPER_UI = {  // slider range and step for each hyperparameter
  momentum: { min: 0, max: 0.99, step: 0.01 },
  rho: { min: 0, max: 0.999, step: 0.001 },
  beta_1: { min: 0, max: 0.99, step: 0.01 },
  beta_2: { min: 0.9, max: 0.9999, step: 0.0001 },
  weight_decay: { min: 0, max: 1, step: 0.001 },
};
const PLOT = { w: 560, h: 440, pad: 36 };
const LOSS = { w: 560, h: 200, padL: 58, padR: 10, padT: 10, padB: 26 };

const state = { catalog: null, surface: null, cards: [], nextId: 0 };
const $ = (sel) => document.querySelector(sel);

function el(name, attrs, parent) {
  const node = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function fmt(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
}

async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (e) {
    throw new Error("the explorer's server does not answer (was `course explore` stopped?)");
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || ("HTTP " + response.status));
  return body;
}

// The file a static build holds for one request: params sorted by name, "name-value" joined by "_".
function staticKey(params) {
  const parts = [...params.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => k + "-" + v);
  return parts.length ? parts.join("_") : "index";
}

// The nearest grid value (as the grid writes it) of a parameter; log-spaced for rates.
function snapValue(endpoint, name, value) {
  const grid = STATIC.grids[endpoint][name];
  if (!grid.every((g) => !isNaN(parseFloat(g)))) return grid.includes(value) ? value : null;
  const f = name === "lr" ? (v) => Math.log(v) : (v) => v;
  let best = grid[0];
  for (const g of grid) if (Math.abs(f(+g) - f(+value)) < Math.abs(f(+best) - f(+value))) best = g;
  return best;
}

// One answer: from the live API, or from the static build's files (sliders snapped to its grid).
async function api(endpoint, params) {
  params = new URLSearchParams(params || {});
  if (!STATIC) return getJSON("api/" + endpoint + "?" + params.toString());
  const grid = STATIC.grids[endpoint] || {};
  const kept = new URLSearchParams();
  for (const [k, v] of params.entries()) {
    if (!(k in grid)) continue;  // fixed in the static version
    const snapped = snapValue(endpoint, k, v);
    if (snapped === null) throw new Error(k + " " + v + " is not in this static version (run `course explore` for it)");
    kept.set(k, snapped);
  }
  return getJSON("data/" + endpoint + "/" + staticKey(kept) + ".json");
}

// In a static build: move a slider onto the grid (or lock it where the grid fixes it).
function snap(input, endpoint, name, log) {
  if (!STATIC) return;
  const grid = (STATIC.grids[endpoint] || {})[name];
  if (!grid) { input.disabled = true; input.title = "fixed in the static version"; return; }
  const raw = log ? Math.pow(10, parseFloat(input.value)) : parseFloat(input.value);
  const v = +snapValue(endpoint, name, String(raw));
  input.step = "any";  // exactly on the grid value, not the nearest slider step
  input.value = log ? Math.log10(v) : v;
}

// In a static build: drop the choices the grid does not hold (e.g. "yours").
function limitChoices(select, endpoint, name) {
  if (!STATIC) return;
  const grid = (STATIC.grids[endpoint] || {})[name];
  if (!grid) return;
  for (const o of [...select.options]) if (!grid.includes(o.value)) o.remove();
}

function showGlobalError(message) {
  const p = $("#global-error");
  p.textContent = message || "";
  p.hidden = !message;
}

// ------------------------------------------------------------------------------ coordinates
function scales() {
  const [x0, x1, y0, y1] = state.surface.extent;
  const sx = (x) => PLOT.pad + (x - x0) / (x1 - x0) * (PLOT.w - 2 * PLOT.pad);
  const sy = (y) => PLOT.h - PLOT.pad - (y - y0) / (y1 - y0) * (PLOT.h - 2 * PLOT.pad);
  const inv = (px, py) => [x0 + (px - PLOT.pad) / (PLOT.w - 2 * PLOT.pad) * (x1 - x0),
                           y0 + (PLOT.h - PLOT.pad - py) / (PLOT.h - 2 * PLOT.pad) * (y1 - y0)];
  return { sx, sy, inv };
}

function clampPx(v, lo, hi) { return Math.max(lo - 2000, Math.min(hi + 2000, v)); }

function pointsAttr(points) {
  const { sx, sy } = scales();
  return points.map(([x, y]) => clampPx(sx(x), 0, PLOT.w).toFixed(1) + "," +
                                 clampPx(sy(y), 0, PLOT.h).toFixed(1)).join(" ");
}

// ---------------------------------------------------------------------------------- drawing
function drawSurface() {
  const svg = $("#surface-plot");
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: PLOT.w, height: PLOT.h, fill: "#fff" }, svg);
  const { sx, sy } = scales();
  const clip = el("clipPath", { id: "plot-clip" }, el("defs", {}, svg));
  el("rect", { x: PLOT.pad, y: PLOT.pad, width: PLOT.w - 2 * PLOT.pad, height: PLOT.h - 2 * PLOT.pad }, clip);
  const g = el("g", { "clip-path": "url(#plot-clip)", id: "plot-area" }, svg);
  for (const c of state.surface.contours) {
    for (const line of c.lines) {
      const d = line.map(([x, y], i) => (i ? "L" : "M") + sx(x).toFixed(1) + " " + sy(y).toFixed(1)).join("");
      el("path", { d, class: "contour", "data-level": c.level }, g);
    }
  }
  const [x0, x1, y0, y1] = state.surface.extent;
  el("rect", { x: PLOT.pad, y: PLOT.pad, width: PLOT.w - 2 * PLOT.pad, height: PLOT.h - 2 * PLOT.pad, fill: "none", class: "axis" }, svg);
  for (const x of [x0, (x0 + x1) / 2, x1]) {
    el("text", { x: sx(x), y: PLOT.h - PLOT.pad + 16, "text-anchor": "middle", class: "tick" }, svg).textContent = fmt(x);
  }
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    el("text", { x: PLOT.pad - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, svg).textContent = fmt(y);
  }
  el("g", { id: "paths-layer", "clip-path": "url(#plot-clip)" }, svg);
  el("text", { id: "banner", x: PLOT.w / 2, y: PLOT.pad - 10, "text-anchor": "middle", class: "banner" }, svg);
  $("#surface-caption").textContent = state.surface.title + ": " + state.surface.formula + " (" + state.surface.note + ")";
}

function drawPaths() {
  const layer = $("#paths-layer");
  if (!layer) return;
  layer.replaceChildren();
  const { sx, sy } = scales();
  const start = currentStart();
  const diverged = [];
  for (const card of state.cards) {
    const r = card.result;
    if (!r || r.error || !r.points.length) continue;
    if (r.comparison && r.comparison.keras_points) {
      el("polyline", { points: pointsAttr(r.comparison.keras_points), class: "reference",
                       stroke: card.color, "data-card": card.id }, layer);
    }
    el("polyline", { points: pointsAttr(r.points), class: "path", stroke: card.color,
                     id: "path-" + card.id, "data-card": card.id, "data-steps": r.points.length - 1,
                     "data-diverged": String(r.diverged) }, layer);
    const [ex, ey] = r.points[r.points.length - 1];
    el("circle", { cx: clampPx(sx(ex), 0, PLOT.w), cy: clampPx(sy(ey), 0, PLOT.h), r: 3.5, fill: card.color }, layer);
    if (r.diverged) diverged.push(card.title());
  }
  el("circle", { cx: sx(start[0]), cy: sy(start[1]), r: 5, class: "start" }, layer);
  $("#banner").textContent = diverged.length ? "diverges: " + diverged.join(", ") : "";
  drawLosses();
}

function drawLosses() {
  const svg = $("#loss-plot");
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: LOSS.w, height: LOSS.h, fill: "#fff" }, svg);
  const series = state.cards.filter((c) => c.result && !c.result.error && c.result.losses.length);
  if (!series.length) return;
  const all = series.flatMap((c) => c.result.losses);
  const positive = all.every((v) => v > 0);
  const tr = positive ? Math.log10 : (v) => v;
  let lo = Math.min(...all.map(tr)), hi = Math.max(...all.map(tr));
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const steps = Math.max(...series.map((c) => c.result.steps));
  const X = (i) => LOSS.padL + i / steps * (LOSS.w - LOSS.padL - LOSS.padR);
  const Y = (v) => LOSS.h - LOSS.padB - (tr(v) - lo) / (hi - lo) * (LOSS.h - LOSS.padT - LOSS.padB);
  el("rect", { x: LOSS.padL, y: LOSS.padT, width: LOSS.w - LOSS.padL - LOSS.padR, height: LOSS.h - LOSS.padT - LOSS.padB, fill: "none", class: "axis" }, svg);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    const label = positive ? fmt(Math.pow(10, v)) : fmt(v);
    el("text", { x: LOSS.padL - 4, y: LOSS.h - LOSS.padB - (v - lo) / (hi - lo) * (LOSS.h - LOSS.padT - LOSS.padB) + 4, "text-anchor": "end", class: "tick" }, svg).textContent = label;
  }
  for (const i of [0, Math.round(steps / 2), steps]) {
    el("text", { x: X(i), y: LOSS.h - 8, "text-anchor": "middle", class: "tick" }, svg).textContent = String(i);
  }
  for (const c of series) {
    const pts = c.result.losses.map((v, i) => X(i).toFixed(1) + "," + Y(v).toFixed(1)).join(" ");
    el("polyline", { points: pts, class: "path", stroke: c.color, id: "loss-" + c.id }, svg);
  }
}

// ------------------------------------------------------------------------------------ cards
function currentStart() {
  return [parseFloat($("#x0").value), parseFloat($("#y0").value)];
}

function addCard(optimizer, impl) {
  const id = state.nextId++;
  const node = $("#card-template").content.firstElementChild.cloneNode(true);
  const card = { id, node, color: COLORS[id % COLORS.length], seq: 0, result: null, hyper: {} };
  node.dataset.card = id;
  node.style.borderLeftColor = card.color;
  node.querySelector(".swatch").style.background = card.color;
  const optSel = node.querySelector(".optimizer");
  for (const o of state.catalog.optimizers) optSel.add(new Option(o.title, o.key));
  const implSel = node.querySelector(".impl");
  for (const m of state.catalog.impls) implSel.add(new Option(m.key === "keras" ? "Keras" : m.key, m.key));
  limitChoices(optSel, "path", "optimizer");
  limitChoices(implSel, "path", "impl");
  optSel.value = optimizer;
  implSel.value = impl;
  card.title = () => optSel.options[optSel.selectedIndex].text + " (" + implSel.value + ")";
  const lr = node.querySelector(".lr");
  const setup = () => {
    const info = state.catalog.optimizers.find((o) => o.key === optSel.value);
    lr.value = Math.log10(info.default_lr);
    snap(lr, "path", "lr", true);
    const box = node.querySelector(".hypers");
    box.replaceChildren();
    card.hyper = {};
    for (const name of info.hyper) {
      const ui = HYPER_UI[name];
      const label = document.createElement("label");
      label.className = "slider";
      label.append(name + " ");
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: ui.min, max: ui.max, step: ui.step });
      input.className = "hyper";
      input.dataset.name = name;
      input.value = state.catalog.hyper[name].default;
      const out = document.createElement("output");
      label.append(input, out);
      box.append(label);
      card.hyper[name] = input;
      const show = () => { out.textContent = fmt(parseFloat(input.value)); };
      show();
      snap(input, "path", name, false);
      show();
      input.addEventListener("input", () => { snap(input, "path", name, false); show(); request(card); });
    }
    showLr();
  };
  const showLr = () => { node.querySelector(".lr-out").textContent = fmt(Math.pow(10, parseFloat(lr.value))); };
  lr.addEventListener("input", () => { snap(lr, "path", "lr", true); showLr(); request(card); });
  optSel.addEventListener("change", () => { setup(); request(card); });
  implSel.addEventListener("change", () => request(card));
  node.querySelector(".remove").addEventListener("click", () => {
    state.cards = state.cards.filter((c) => c !== card);
    node.remove();
    drawPaths();
  });
  card.params = () => {
    const p = new URLSearchParams({
      surface: $("#surface").value, optimizer: optSel.value, impl: implSel.value,
      lr: Math.pow(10, parseFloat(lr.value)).toPrecision(6), steps: $("#steps").value,
      x0: $("#x0").value, y0: $("#y0").value });
    for (const [name, input] of Object.entries(card.hyper)) p.set(name, input.value);
    return p;
  };
  setup();
  $("#cards").append(node);
  state.cards.push(card);
  return card;
}

function setStatus(card, text, kind) {
  const s = card.node.querySelector(".status");
  s.textContent = text;
  s.className = "status" + (kind ? " " + kind : "");
}

function describe(card, r) {
  if (r.error) return [r.error, "error"];
  const parts = [];
  const last = r.losses[r.losses.length - 1];
  if (r.diverged) {
    parts.push("diverges: cut after step " + (r.points.length - 1) + " of " + r.steps + " (the next point is not finite or beyond " + fmt(state.catalog.escape) + ")");
  } else {
    parts.push("loss after " + r.steps + " steps: " + fmt(last));
  }
  const c = r.comparison;
  if (c && c.error) parts.push("Keras: " + c.error);
  else if (c) {
    const first = c.first_step_over === null ? "never more than " + fmt(c.tolerance) : "first differ by more than " + fmt(c.tolerance) + " at step " + c.first_step_over;
    parts.push("vs Keras (dashed): largest gap " + fmt(c.max_gap) + "; " + first);
  }
  return [parts.join(". "), r.diverged ? "diverged" : (c && c.first_step_over !== null ? "error" : "")];
}

let pending = new Set();
let scheduled = false;
function request(card) {
  pending.add(card);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const cards = [...pending];
    pending = new Set();
    for (const c of cards) fetchPath(c);
  });
}

async function fetchPath(card) {
  const seq = ++card.seq;
  card.node.dataset.loading = "true";
  try {
    const r = await api("path", card.params());
    if (seq !== card.seq) return;
    card.result = r;
    const [text, kind] = describe(card, r);
    setStatus(card, text, kind);
  } catch (e) {
    if (seq !== card.seq) return;
    card.result = null;
    setStatus(card, e.message, "error");
  } finally {
    if (seq === card.seq) {
      card.node.dataset.loading = "false";
      drawPaths();
    }
  }
}

function refreshAll() { for (const c of state.cards) request(c); }

async function loadSurface(reset) {
  state.surface = await api("surface", { name: $("#surface").value });
  if (reset) {
    $("#x0").value = state.surface.start[0];
    $("#y0").value = state.surface.start[1];
  }
  drawSurface();
  drawPaths();
  refreshAll();
}

async function initOptimizers() {
  const surf = $("#surface");
  for (const s of state.catalog.surfaces) surf.add(new Option(s.title, s.name));
  limitChoices(surf, "path", "surface");
  if (STATIC) {  // the build holds the default start and 100 steps only
    for (const id of ["#steps", "#x0", "#y0", "#reset-start"]) { $(id).disabled = true; $(id).title = "fixed in the static version"; }
  }
  surf.addEventListener("change", () => loadSurface(true).catch((e) => showGlobalError(e.message)));
  $("#steps").addEventListener("input", () => { $("#steps-out").textContent = $("#steps").value; refreshAll(); });
  for (const id of ["#x0", "#y0"]) $(id).addEventListener("change", () => { drawPaths(); refreshAll(); });
  $("#reset-start").addEventListener("click", () => {
    $("#x0").value = state.surface.start[0];
    $("#y0").value = state.surface.start[1];
    drawPaths();
    refreshAll();
  });
  $("#add").addEventListener("click", () => request(addCard("adam", "keras")));
  $("#surface-plot").addEventListener("click", (ev) => {
    if (STATIC) return;
    const svg = $("#surface-plot");
    const box = svg.getBoundingClientRect();
    const px = (ev.clientX - box.left) * PLOT.w / box.width;
    const py = (ev.clientY - box.top) * PLOT.h / box.height;
    const [x, y] = scales().inv(px, py);
    $("#x0").value = x.toFixed(2);
    $("#y0").value = y.toFixed(2);
    drawPaths();
    refreshAll();
  });
  addCard("adam", "keras");
  addCard("momentum", "keras");
  await loadSurface(true);
}

// ------------------------------------------------------------------------------------- tabs
// Each view is set up the first time it is shown (no computing for views nobody opened).
const VIEWS = { optimizers: initOptimizers };
const started = {};

function showView() {
  const name = (location.hash || "#optimizers").slice(1);
  const view = name in VIEWS ? name : "optimizers";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === view);
  if (!started[view]) {
    started[view] = true;
    VIEWS[view]().catch((e) => showGlobalError(e.message));
  }
}

async function main() {
  try {
    state.catalog = await api("catalog");
  } catch (e) {
    showGlobalError(e.message);
    return;
  }
  if (STATIC) $("#static-note").hidden = false;
  window.addEventListener("hashchange", showView);
  showView();
}

window.addEventListener("DOMContentLoaded", main);
