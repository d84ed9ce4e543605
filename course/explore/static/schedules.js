// The schedules view (chapter 7): the rate per step of each chosen schedule, and the LR range
// test. Uses app.js's helpers (el, fmt, api, snap, limitChoices, $).
"use strict";

const SCHED = { w: 560, h: 300, padL: 56, padR: 12, padT: 12, padB: 28 };
const SCHED_SLIDERS = {  // slider -> [min, max, step, log?]; lr and steps first
  lr: [-3, 1, 0.01, true], steps: [100, 5000, 10, false], decay: [0.01, 1, 0.01, false],
  decay_steps: [10, 2000, 10, false], warmup: [0, 2000, 10, false], alpha: [0, 1, 0.01, false],
  pct_start: [0.01, 0.99, 0.01, false],
};
const sched = { results: {}, seq: 0, inputs: {}, range: null, rangeSeq: 0 };

function schedParams(info) {
  const p = { schedule: info.key, impl: $("#sched-impl").value };
  for (const name of ["lr", "steps", ...info.params]) {
    const [, , , log] = SCHED_SLIDERS[name];
    const v = parseFloat(sched.inputs[name].value);
    p[name] = log ? Math.pow(10, v).toPrecision(6) : String(v);
  }
  return p;
}

function chosenSchedules() {
  return state.catalog.schedule_view.schedules.filter((s) => $("#sched-on-" + s.key).checked);
}

async function refreshSchedules() {
  const seq = ++sched.seq;
  const chosen = chosenSchedules();
  const answers = await Promise.all(chosen.map((info) =>
    api("schedule", schedParams(info)).catch((e) => ({ error: e.message, rates: [] }))));
  if (seq !== sched.seq) return;  // a newer slider value is on its way
  sched.results = {};
  chosen.forEach((info, i) => { sched.results[info.key] = answers[i]; });
  drawSchedules();
}

function drawSchedules() {
  const svg = $("#sched-plot");
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: SCHED.w, height: SCHED.h, fill: "#fff" }, svg);
  const list = $("#sched-status");
  list.replaceChildren();
  const infos = state.catalog.schedule_view.schedules;
  const shown = infos.filter((s) => sched.results[s.key]);
  const all = shown.flatMap((s) => [...sched.results[s.key].rates,
    ...((sched.results[s.key].comparison || {}).keras_rates || [])]).filter((v) => v !== null);
  const n = Math.max(1, ...shown.map((s) => sched.results[s.key].rates.length));
  const hi = all.length ? Math.max(...all) * 1.05 || 1 : 1;
  const X = (i) => SCHED.padL + i / Math.max(n - 1, 1) * (SCHED.w - SCHED.padL - SCHED.padR);
  const Y = (v) => SCHED.h - SCHED.padB - v / hi * (SCHED.h - SCHED.padT - SCHED.padB);
  el("rect", { x: SCHED.padL, y: SCHED.padT, width: SCHED.w - SCHED.padL - SCHED.padR, height: SCHED.h - SCHED.padT - SCHED.padB, fill: "none", class: "axis" }, svg);
  for (const v of [0, hi / 2, hi]) el("text", { x: SCHED.padL - 4, y: Y(v) + 4, "text-anchor": "end", class: "tick" }, svg).textContent = fmt(v);
  for (const i of [0, Math.round((n - 1) / 2), n - 1]) el("text", { x: X(i), y: SCHED.h - 8, "text-anchor": "middle", class: "tick" }, svg).textContent = String(i);
  shown.forEach((info) => {
    const r = sched.results[info.key];
    const color = COLORS[infos.indexOf(info) % COLORS.length];
    const line = (rates) => rates.map((v, i) => v === null ? null : X(i).toFixed(1) + "," + Y(v).toFixed(1)).filter(Boolean).join(" ");
    const item = document.createElement("li");
    item.id = "sched-status-" + info.key;
    item.style.borderLeft = "4px solid " + color;
    item.style.paddingLeft = "6px";
    if (r.error) {
      item.textContent = info.title + ": " + r.error;
      item.className = "error";
    } else {
      if (r.comparison) el("polyline", { points: line(r.comparison.keras_rates), class: "reference", stroke: color }, svg);
      el("polyline", { points: line(r.rates), class: "path", stroke: color, id: "sched-" + info.key }, svg);
      const last = r.rates[r.rates.length - 1];
      let text = info.title + " (" + info.class + "): " + fmt(r.rates[0]) + " at step 0, " + fmt(last) + " at the last step";
      const c = r.comparison;
      if (c) {
        text += c.first_step_over === null
          ? "; same as Keras (" + info.keras + ") to " + fmt(c.max_relative_gap) + " of the peak"
          : "; differs from Keras (" + info.keras + ") from step " + c.first_step_over + ", by up to " +
            (c.max_gap === null ? "a non-finite rate" : fmt(c.max_gap) + " (" + fmt(100 * c.max_relative_gap) + "% of the peak)");
        if (c.first_step_over !== null) item.className = "error";
      } else if ($("#sched-impl").value === "keras") {
        text += " (Keras: " + info.keras + ")";
      }
      item.textContent = text;
    }
    list.append(item);
  });
}

// ----------------------------------------------------------------------------- range test
const RANGE_PLOT = { w: 560, h: 260, padL: 56, padR: 12, padT: 12, padB: 28 };

async function refreshRange() {
  const seq = ++sched.rangeSeq;
  $("#range-status").textContent = "computing… (the range test trains a small network, a second or two)";
  $("#range-plot").dataset.loading = "true";
  let r;
  try {
    r = await api("range_test", { impl: $("#range-impl").value, steps: $("#range-steps").value, beta: $("#range-beta").value });
  } catch (e) {
    r = { error: e.message, lrs: [], losses: [] };
  }
  if (seq !== sched.rangeSeq) return;
  sched.range = r;
  $("#range-plot").dataset.loading = "false";
  drawRange();
}

function drawRange() {
  const r = sched.range;
  const svg = $("#range-plot");
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: RANGE_PLOT.w, height: RANGE_PLOT.h, fill: "#fff" }, svg);
  const status = $("#range-status");
  status.className = r.error ? "error" : "";
  if (r.error) { status.textContent = r.error; return; }
  const pts = r.lrs.map((lr, i) => [lr, r.losses[i]]).filter(([, v]) => v !== null);
  if (!pts.length) { status.textContent = "the range test recorded no finite loss"; return; }
  const losses = pts.map(([, v]) => v);
  const lo = Math.min(...losses) * 0.9, hi = Math.min(Math.max(...losses), 4 * losses[0]) * 1.1;
  const lx0 = Math.log10(r.lrs[0]), lx1 = Math.log10(r.lrs[r.lrs.length - 1]);
  const P = RANGE_PLOT;
  const X = (lr) => P.padL + (Math.log10(lr) - lx0) / Math.max(lx1 - lx0, 1e-9) * (P.w - P.padL - P.padR);
  const Y = (v) => P.h - P.padB - (Math.min(v, hi) - lo) / (hi - lo) * (P.h - P.padT - P.padB);
  el("rect", { x: P.padL, y: P.padT, width: P.w - P.padL - P.padR, height: P.h - P.padT - P.padB, fill: "none", class: "axis" }, svg);
  for (let e = Math.ceil(lx0); e <= Math.floor(lx1); e++) {
    el("text", { x: X(Math.pow(10, e)), y: P.h - 8, "text-anchor": "middle", class: "tick" }, svg).textContent = fmt(Math.pow(10, e));
  }
  for (const v of [lo, (lo + hi) / 2, hi]) el("text", { x: P.padL - 4, y: Y(v) + 4, "text-anchor": "end", class: "tick" }, svg).textContent = fmt(v);
  el("polyline", { id: "range-curve", class: "path", stroke: COLORS[0],
    points: pts.map(([lr, v]) => X(lr).toFixed(1) + "," + Y(v).toFixed(1)).join(" ") }, svg);
  if (r.suggestion) {
    el("line", { id: "range-suggestion", class: "suggestion", x1: X(r.suggestion), x2: X(r.suggestion), y1: P.padT, y2: P.h - P.padB }, svg);
  }
  const q = r.request;
  status.textContent = (r.suggestion ? "suggested rate " + fmt(r.suggestion) + " (green: where the loss falls fastest)" : (r.note || "no suggestion")) +
    "; lowest smoothed loss at " + fmt(r.lowest_loss_rate) + ". " + r.lrs.length + " batches of " + q.batch_size +
    " from " + fmt(q.start_lr) + " to " + fmt(q.end_lr) + " (log axis), " + q.model + ", " + q.data + ".";
}

// ---------------------------------------------------------------------------------- set up
async function initSchedules() {
  const cat = state.catalog.schedule_view;
  const box = $("#sched-choices");
  for (const info of cat.schedules) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    Object.assign(input, { type: "checkbox", id: "sched-on-" + info.key, checked: ["warmup_cosine", "one_cycle", "step"].includes(info.key) });
    input.addEventListener("change", refreshSchedules);
    label.append(input, " " + info.title);
    box.append(label);
  }
  const impl = $("#sched-impl");
  for (const m of state.catalog.impls) impl.add(new Option(m.key === "keras" ? "Keras" : m.key, m.key));
  limitChoices(impl, "schedule", "impl");
  impl.addEventListener("change", refreshSchedules);
  const defaults = { lr: 0.1, steps: 1000 };
  for (const [name, p] of Object.entries(cat.params)) defaults[name] = p.default;
  const sliders = $("#sched-sliders");
  for (const [name, [min, max, step, log]] of Object.entries(SCHED_SLIDERS)) {
    const label = document.createElement("label");
    label.className = "slider";
    label.title = name in cat.params ? cat.params[name].meaning : name;
    label.append(name + " ");
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min, max, step, id: "sched-" + name + "-input" });
    input.value = log ? Math.log10(defaults[name]) : defaults[name];
    const out = document.createElement("output");
    const show = () => { out.textContent = fmt(log ? Math.pow(10, parseFloat(input.value)) : parseFloat(input.value)); };
    snap(input, "schedule", name, log);
    show();
    input.addEventListener("input", () => { snap(input, "schedule", name, log); show(); refreshSchedules(); });
    label.append(input, out);
    sliders.append(label);
    sched.inputs[name] = input;
  }
  const rimpl = $("#range-impl");
  for (const m of state.catalog.impls.filter((m) => m.key !== "keras")) rimpl.add(new Option(m.key, m.key));
  limitChoices(rimpl, "range_test", "impl");
  limitChoices($("#range-steps"), "range_test", "steps");
  limitChoices($("#range-beta"), "range_test", "beta");
  for (const id of ["#range-impl", "#range-steps", "#range-beta"]) $(id).addEventListener("change", refreshRange);
  await Promise.all([refreshSchedules(), refreshRange()]);
}

VIEWS.schedules = initSchedules;
