// The feature-scaling and batch-size view (chapters 1-3): SGD on a two-weight linear regression,
// raw against standardized features, with a cloud of mini-batch paths. Uses app.js's helpers.
"use strict";

// The plot area is square (the server fits a square window on standardized features, so round
// contours are drawn round); the left and bottom margins hold the tick values and axis titles.
const SCALE = { w: 400, h: 394, padL: 58, padR: 14, padT: 14, padB: 52 };
const BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2000];  // the batch slider's stops
const scaleSeq = { raw: 0, standardized: 0 };

function batchSize() { return BATCHES[parseInt($("#scale-batch").value, 10)]; }
function dataSet() { return state.catalog.scaling_view.data.find((d) => d.key === $("#scale-data").value); }

function scaleParams(kind) {
  const p = { data: $("#scale-data").value, features: kind,
              lr: Math.pow(10, parseFloat($("#scale-lr-" + kind).value)).toPrecision(6), batch: String(batchSize()) };
  if (kind === "standardized") p.impl = $("#scale-impl").value;
  return p;
}

async function refreshScaling(kind) {
  const seq = ++scaleSeq[kind];
  const svg = $("#scale-plot-" + kind);
  svg.dataset.loading = "true";
  let r;
  try {
    r = await api("scaling", scaleParams(kind));
  } catch (e) {
    r = { error: e.message };
  }
  if (seq !== scaleSeq[kind]) return;
  svg.dataset.loading = "false";
  drawScaling(kind, r);
}

// About five round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi].
function ticks(lo, hi) {
  const raw = (hi - lo) / 4;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  return out;
}

// The sentence under a plot: what the full-batch path did, in words a learner reads at a glance.
function verdict(r) {
  const q = r.request;
  if (r.diverged) return "Diverges: lr " + fmt(q.lr) + " is above the stable limit " + fmt(r.stable_lr) + ".";
  const near = (p) => p.every((v, i) => Math.abs(v - r.optimum[i]) <= 0.02 * Math.abs(r.optimum[i]));
  const step = r.points.findIndex(near);
  if (step >= 0) return "Reaches the minimum (within 2% in each weight) at step " + step + " of " + q.steps + ".";
  const pct = (v) => fmt(Math.round(100 * v)) + "%";
  // the why, where the valley is narrow: above half the stable rate the steps overshoot across it
  const why = r.condition_number < 100 ? "" : " A valley " + fmt(+Math.sqrt(r.condition_number).toPrecision(2)) +
    "\u00d7 longer than wide: " + (q.lr > r.stable_lr / 2 ? "each step bounces across it and barely moves along it."
                            : "steps small enough for its width barely move along it.");
  return "Misses the minimum: after " + q.steps + " steps w1 has gone " + pct(r.progress[0]) +
    " of the way, w2 " + pct(r.progress[1]) + "." + why;
}

function drawScaling(kind, r) {
  const svg = $("#scale-plot-" + kind);
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: SCALE.w, height: SCALE.h, fill: "#fff" }, svg);
  const status = $("#scale-status-" + kind);
  const headline = $("#scale-verdict-" + kind);
  status.className = r.error ? "error" : "";
  headline.textContent = "";
  if (r.error) { status.textContent = kind + ": " + r.error; return; }
  const [x0, x1, y0, y1] = r.extent;
  const W = SCALE.w - SCALE.padL - SCALE.padR, H = SCALE.h - SCALE.padT - SCALE.padB;
  const sx = (x) => SCALE.padL + (x - x0) / (x1 - x0) * W;
  const sy = (y) => SCALE.padT + H - (y - y0) / (y1 - y0) * H;
  const clipId = "scale-clip-" + kind;
  const clip = el("clipPath", { id: clipId }, el("defs", {}, svg));
  el("rect", { x: SCALE.padL, y: SCALE.padT, width: W, height: H }, clip);
  const g = el("g", { "clip-path": "url(#" + clipId + ")" }, svg);
  for (const c of r.contours) {
    for (const line of c.lines) {
      el("path", { class: "contour", d: line.map(([x, y], i) => (i ? "L" : "M") + sx(x).toFixed(1) + " " + sy(y).toFixed(1)).join("") }, g);
    }
  }
  const px = (p) => clampPx(sx(p[0]), 0, SCALE.w).toFixed(1) + "," + clampPx(sy(p[1]), 0, SCALE.h).toFixed(1);
  for (const b of r.batch_paths) el("polyline", { class: "batch", stroke: COLORS[1], points: b.points.map(px).join(" ") }, g);
  el("polyline", { class: "path", stroke: COLORS[0], id: "scale-path-" + kind, points: r.points.map(px).join(" ") }, g);
  r.points.slice(1).forEach((p, i) => {
    const [cx, cy] = [clampPx(sx(p[0]), 0, SCALE.w), clampPx(sy(p[1]), 0, SCALE.h)];
    el("circle", { cx, cy, r: 2.2, fill: COLORS[0] }, g);
    // the first steps and the last numbered: on raw features they show the bounce across the
    // valley and how little the rest of the steps went along it
    if (i < 3) el("text", { x: cx + 6, y: cy + 4, class: "label step" }, g).textContent = String(i + 1);
    else if (i === r.points.length - 2) el("text", { x: cx - 8, y: cy + 14, "text-anchor": "end", class: "label step" }, g).textContent = "step " + (i + 1);
  });
  const [ox, oy] = [sx(r.optimum[0]), sy(r.optimum[1])];
  el("circle", { cx: ox, cy: oy, r: 5, class: "marker", id: "scale-minimum-" + kind }, g);
  el("text", { x: ox + (ox > SCALE.padL + W - 60 ? -8 : 8), y: oy - 7, "text-anchor": ox > SCALE.padL + W - 60 ? "end" : "start", class: "label" }, g).textContent = "minimum";
  el("circle", { cx: sx(0), cy: sy(0), r: 5, class: "start" }, g);
  el("text", { x: sx(0) + (sx(0) > SCALE.padL + W - 40 ? -8 : 8), y: sy(0) + 16, "text-anchor": sx(0) > SCALE.padL + W - 40 ? "end" : "start", class: "label" }, g).textContent = "start";
  el("rect", { x: SCALE.padL, y: SCALE.padT, width: W, height: H, fill: "none", class: "axis" }, svg);
  for (const x of ticks(x0, x1)) {
    el("line", { x1: sx(x), x2: sx(x), y1: SCALE.padT + H, y2: SCALE.padT + H + 4, class: "axis" }, svg);
    el("text", { x: sx(x), y: SCALE.padT + H + 16, "text-anchor": "middle", class: "tick" }, svg).textContent = fmt(x);
  }
  for (const y of ticks(y0, y1)) {
    el("line", { x1: SCALE.padL - 4, x2: SCALE.padL, y1: sy(y), y2: sy(y), class: "axis" }, svg);
    el("text", { x: SCALE.padL - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, svg).textContent = fmt(y);
  }
  const d = dataSet();
  const names = kind === "raw" ? d.weights
    : d.features.map((f, i) => "w" + (i + 1) + " (per std. dev. of " + f.replace(/ \(.*\)$/, "") + ")");
  el("text", { x: SCALE.padL + W / 2, y: SCALE.h - 18, "text-anchor": "middle", class: "axis-title" }, svg).textContent = names[0];
  // on raw features one unit up is drawn much longer than one unit across: say how much
  const stretch = (x1 - x0) / (y1 - y0);
  el("text", { x: SCALE.padL + W / 2, y: SCALE.h - 4, "text-anchor": "middle", class: "tick", id: "scale-stretch-" + kind }, svg).textContent =
    kind === "raw" ? "not to scale: w2 stretched " + fmt(+stretch.toPrecision(2)) + "\u00d7 against w1"
                   : "the same scale on both axes";
  el("text", { x: 12, y: SCALE.padT + H / 2, "text-anchor": "middle", class: "axis-title", transform: "rotate(-90 12 " + (SCALE.padT + H / 2) + ")" }, svg).textContent = names[1];
  if (r.diverged) el("text", { x: SCALE.padL + W / 2, y: SCALE.padT + 20, "text-anchor": "middle", class: "banner", id: "scale-banner-" + kind }, svg).textContent = "diverges";
  headline.textContent = verdict(r);
  const q = r.request;
  const last = r.losses[r.losses.length - 1];
  const s = r.gradient_spread;
  let text = kind + " features: condition number " + fmt(r.condition_number) + " (contours " + fmt(Math.sqrt(r.condition_number)) +
    "\u00d7 longer than wide), stable below lr " + fmt(r.stable_lr) + ". " +
    (r.diverged ? "The full-batch path diverges (cut after step " + (r.points.length - 1) + "). "
                : "Loss after " + q.steps + " steps " + fmt(last) + " (best " + fmt(r.best_loss) + "). ") +
    "Batch " + q.batch + ": mini-batch gradients at the start differ from the full gradient by " + fmt(100 * s.relative) +
    "% on average (" + fmt(s.angle_degrees) + "° apart, " + s.batches + " batches)" +
    (r.final_spread === null ? "." : "; the mini-batch paths end " + fmt(r.final_spread) + " from the full-batch one on average (" +
      fmt(100 * r.final_spread_relative) + "% of the distance from the start to the minimum)") +
    (r.batch_diverged ? "; " + r.batch_diverged + " of " + s.batches + " diverge." : ".");
  if (r.comparison) text += " Standardized features vs Keras's Normalization: largest gap " + fmt(r.comparison.max_feature_gap) + ".";
  status.textContent = text;
}

function refreshBoth() { refreshScaling("raw"); refreshScaling("standardized"); }

function showData() {
  const d = dataSet();
  $("#scale-data-note").textContent = "Data: " + d.note + ".";
  for (const kind of ["raw", "standardized"]) {
    const input = $("#scale-lr-" + kind);
    input.value = Math.log10(d.default_lr[kind]);
    snap(input, "scaling", "lr", true);
    $("#scale-lr-" + kind + "-out").textContent = fmt(Math.pow(10, parseFloat(input.value)));
  }
}

async function initScaling() {
  const cat = state.catalog.scaling_view;
  const data = $("#scale-data");
  for (const d of cat.data) data.add(new Option(d.title, d.key));
  limitChoices(data, "scaling", "data");
  for (const kind of ["raw", "standardized"]) {
    const input = $("#scale-lr-" + kind);
    input.addEventListener("input", () => {
      snap(input, "scaling", "lr", true);
      $("#scale-lr-" + kind + "-out").textContent = fmt(Math.pow(10, parseFloat(input.value)));
      refreshScaling(kind);
    });
  }
  showData();
  data.addEventListener("change", () => { showData(); refreshBoth(); });
  const batch = $("#scale-batch");
  const snapBatch = () => {  // the slider moves over BATCHES; a static build holds some of them
    if (!STATIC) return;
    const v = +snapValue("scaling", "batch", String(batchSize()));
    batch.value = BATCHES.indexOf(v);
  };
  const showBatch = () => { $("#scale-batch-out").textContent = String(batchSize()); };
  snapBatch();
  showBatch();
  batch.addEventListener("input", () => { snapBatch(); showBatch(); refreshBoth(); });
  const impl = $("#scale-impl");
  for (const m of state.catalog.impls) impl.add(new Option(m.key === "keras" ? "Keras (Normalization)" : m.key, m.key));
  limitChoices(impl, "scaling", "impl");
  impl.addEventListener("change", () => refreshScaling("standardized"));
  await Promise.all([refreshScaling("raw"), refreshScaling("standardized")]);
}

VIEWS.scaling = initScaling;
