// The feature-scaling and batch-size view (chapters 1-3): SGD on a two-weight linear regression,
// raw against standardized features, with a cloud of mini-batch paths. Uses app.js's helpers.
"use strict";

const SCALE = { w: 420, h: 360, pad: 44 };
const BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2000];  // the batch slider's stops
const scaleSeq = { raw: 0, standardized: 0 };

function batchSize() { return BATCHES[parseInt($("#scale-batch").value, 10)]; }

function scaleParams(kind) {
  const p = { features: kind, lr: Math.pow(10, parseFloat($("#scale-lr-" + kind).value)).toPrecision(6), batch: String(batchSize()) };
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

function drawScaling(kind, r) {
  const svg = $("#scale-plot-" + kind);
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: SCALE.w, height: SCALE.h, fill: "#fff" }, svg);
  const status = $("#scale-status-" + kind);
  status.className = r.error ? "error" : "";
  if (r.error) { status.textContent = kind + ": " + r.error; return; }
  const [x0, x1, y0, y1] = r.extent;
  const sx = (x) => SCALE.pad + (x - x0) / (x1 - x0) * (SCALE.w - 2 * SCALE.pad);
  const sy = (y) => SCALE.h - SCALE.pad - (y - y0) / (y1 - y0) * (SCALE.h - 2 * SCALE.pad);
  const clipId = "scale-clip-" + kind;
  const clip = el("clipPath", { id: clipId }, el("defs", {}, svg));
  el("rect", { x: SCALE.pad, y: SCALE.pad, width: SCALE.w - 2 * SCALE.pad, height: SCALE.h - 2 * SCALE.pad }, clip);
  const g = el("g", { "clip-path": "url(#" + clipId + ")" }, svg);
  for (const c of r.contours) {
    for (const line of c.lines) {
      el("path", { class: "contour", d: line.map(([x, y], i) => (i ? "L" : "M") + sx(x).toFixed(1) + " " + sy(y).toFixed(1)).join("") }, g);
    }
  }
  const px = (p) => clampPx(sx(p[0]), 0, SCALE.w).toFixed(1) + "," + clampPx(sy(p[1]), 0, SCALE.h).toFixed(1);
  for (const b of r.batch_paths) el("polyline", { class: "batch", stroke: COLORS[1], points: b.points.map(px).join(" ") }, g);
  el("polyline", { class: "path", stroke: COLORS[0], id: "scale-path-" + kind, points: r.points.map(px).join(" ") }, g);
  el("circle", { cx: sx(r.optimum[0]), cy: sy(r.optimum[1]), r: 4, class: "marker" }, g);
  el("circle", { cx: sx(0), cy: sy(0), r: 5, class: "start" }, g);
  el("rect", { x: SCALE.pad, y: SCALE.pad, width: SCALE.w - 2 * SCALE.pad, height: SCALE.h - 2 * SCALE.pad, fill: "none", class: "axis" }, svg);
  for (const x of [x0, x1]) el("text", { x: sx(x), y: SCALE.h - SCALE.pad + 16, "text-anchor": "middle", class: "tick" }, svg).textContent = fmt(x);
  for (const y of [y0, y1]) el("text", { x: SCALE.pad - 4, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, svg).textContent = fmt(y);
  if (r.diverged) el("text", { x: SCALE.w / 2, y: SCALE.pad - 10, "text-anchor": "middle", class: "banner", id: "scale-banner-" + kind }, svg).textContent = "diverges";
  const q = r.request;
  const last = r.losses[r.losses.length - 1];
  const s = r.gradient_spread;
  let text = kind + " features: condition number " + fmt(r.condition_number) + ", stable below lr " + fmt(r.stable_lr) + ". " +
    (r.diverged ? "The full-batch path diverges (cut after step " + (r.points.length - 1) + "). "
                : "Loss after " + q.steps + " steps " + fmt(last) + " (best " + fmt(r.best_loss) + "). ") +
    "Batch " + q.batch + ": mini-batch gradients at the start differ from the full gradient by " + fmt(100 * s.relative) +
    "% on average (" + fmt(s.angle_degrees) + "° apart, " + s.batches + " batches)" +
    (r.final_spread === null ? "." : "; the mini-batch paths end " + fmt(r.final_spread) + " from the full-batch one on average.");
  if (r.comparison) text += " Standardized features vs Keras's Normalization: largest gap " + fmt(r.comparison.max_feature_gap) + ".";
  status.textContent = text;
}

function refreshBoth() { refreshScaling("raw"); refreshScaling("standardized"); }

async function initScaling() {
  const cat = state.catalog.scaling_view;
  for (const kind of ["raw", "standardized"]) {
    const input = $("#scale-lr-" + kind);
    input.value = Math.log10(cat.lr[kind].default);
    const show = () => { $("#scale-lr-" + kind + "-out").textContent = fmt(Math.pow(10, parseFloat(input.value))); };
    snap(input, "scaling", "lr", true);
    show();
    input.addEventListener("input", () => { snap(input, "scaling", "lr", true); show(); refreshScaling(kind); });
  }
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
