// The pkdn page: pick or drop an image, POST it to /api/sr (the result) and /api/bicubic (the "before"),
// show before/after. No external code. Model names, defaults and limits come from /api/info.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { file: null, beforeUrl: null, afterUrl: null, abort: null, timer: null,
  defaults: {}, maxCropSide: null, wholeInstalled: true };
const LABEL = { crop: "Face crop", whole: "Whole photo" };

function mode() { return document.querySelector('input[name="mode"]:checked').value; }

function help(m) {
  if (m === "crop") return "One small, tightly cropped face, enlarged as a whole (the model learned 16 x 16 px faces).";
  if (m === "whole") return "A photo: faces are found, enhanced and pasted back; the rest is enlarged.";
  const side = state.maxCropSide ? ` (up to ${state.maxCropSide} px a side)` : "";
  return `A small image${side} is taken as one face crop, a larger one as a photo whose faces are found.`;
}

// The first model option is "the default": the server picks it for the mode it runs, and the result names it.
function defaultLabel(m) {
  const d = state.defaults;
  if (m !== "auto") return [`default (${d[m] || "?"})`, ""];
  if (d.crop === d.whole) return [`default (${d.crop})`, ""];
  return [`default (${d.crop} / ${d.whole})`, `${d.crop} for a face crop, ${d.whole} for a photo`];
}

function modeChanged() {
  $("mode-help").textContent = help(mode());
  const def = $("model").options[0];
  if (def) [def.textContent, def.title] = defaultLabel(mode());
}

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = !msg;
}

function setStatus(text, busy) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", !!busy);
}

async function loadInfo() {
  try {
    const info = await (await fetch("/api/info")).json();
    state.defaults = info.default_models || {};
    state.maxCropSide = info.max_crop_side || null;
    const sel = $("model");
    const def = document.createElement("option");
    def.value = "";
    sel.appendChild(def);
    for (const name of info.models) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = name;
      sel.appendChild(opt);
    }
    if (!info.modes.whole) {
      state.wholeInstalled = false;
      $("mode-whole").disabled = true;
      $("mode-whole").parentElement.title = "whole-photo mode is not installed in this pkdn";
      $("mode-whole").parentElement.append(" (not installed)");
    }
    modeChanged();
  } catch (e) {
    showError("Cannot reach the pkdn server: is `pkdn serve` still running?");
  }
}

function choose(file) {
  if (!file) return;
  state.file = file;
  $("filename").textContent = file.name;
  $("run").disabled = false;
  run();
}

// Notes and hints belong to one result: gone as soon as another run starts.
function clearNotes() {
  for (const id of ["notes", "hint"]) {
    $(id).replaceChildren();
    $(id).hidden = true;
  }
}

// After an error nothing of the previous image stays on screen, least of all its Download link.
function clearResult() {
  clearNotes();
  $("result").hidden = true;
  $("after").removeAttribute("data-ready");
  for (const img of [$("before"), $("after")]) img.removeAttribute("src");
  $("download").removeAttribute("href");
  for (const key of ["beforeUrl", "afterUrl"]) {
    if (state[key]) URL.revokeObjectURL(state[key]);
    state[key] = null;
  }
}

async function png(resp) {
  if (!resp.ok) {
    let msg = `HTTP ${resp.status}`;
    try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return resp.blob();
}

async function run() {
  if (!state.file) return;
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  const asked = mode();
  showError("");
  clearNotes();
  $("run").disabled = true;
  $("result").setAttribute("aria-busy", "true");
  const t0 = performance.now();
  clearInterval(state.timer);
  const tick = () => setStatus(`Working... ${((performance.now() - t0) / 1000).toFixed(1)} s`, true);
  tick();
  state.timer = setInterval(tick, 100);
  const form = new FormData();
  form.append("image", state.file);
  form.append("mode", asked);
  if ($("model").value) form.append("model", $("model").value);
  form.append("ensemble", $("ensemble").value);
  const post = (path) => fetch(path, { method: "POST", body: form, signal: abort.signal });
  try {
    const [sr, bicubic] = await Promise.all([post("/api/sr"), post("/api/bicubic")]);
    const after = await png(sr);
    const before = await png(bicubic);
    if (abort.signal.aborted) return;  // a newer run owns the page now
    const h = (name, fallback) => sr.headers.get(`X-Pkdn-${name}`) || fallback;
    const res = {
      faces: JSON.parse(h("Faces", "[]")),
      inSize: h("Input-Size", "0x0").split("x").map(Number),
      mode: h("Mode", asked),
      model: h("Model", ""),
      kind: h("Kind", ""),
      asked,
    };
    await show(after, before, res);
    if (abort.signal.aborted) return;
    const notes = JSON.parse(h("Notes", "[]"));
    $("notes").textContent = notes.map((n) => `Note: ${n}.`).join(" ");
    $("notes").hidden = !notes.length;
    setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s`, false);
  } catch (e) {
    if (e.name === "AbortError" || abort.signal.aborted) return;
    setStatus("", false);
    clearResult();
    showError(e.message);
  } finally {
    if (state.abort === abort) {
      clearInterval(state.timer);
      state.abort = null;
      $("run").disabled = false;
      $("result").removeAttribute("aria-busy");
    }
  }
}

function loaded(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error("the browser could not display the result"));
    img.src = url;
  });
}

// A one-line hint when the mode asked for does not fit what pkdn.kind.input_kind (on the server) calls the image.
function hint(res) {
  const [w, h] = res.inSize;
  const [other, looks] = res.kind === "photo" ? ["whole", "a photo"] : ["crop", "a face crop"];
  if (res.asked === "auto" || res.asked === other || !res.kind || (other === "whole" && !state.wholeInstalled)) return;
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "link";
  btn.textContent = LABEL[other];
  btn.addEventListener("click", () => {
    document.querySelector(`input[name="mode"][value="${other}"]`).checked = true;
    modeChanged();
    run();
  });
  $("hint").replaceChildren(`This looks like ${looks} (${w} x ${h} px): try `, btn, " mode.");
  $("hint").hidden = false;
}

async function show(afterBlob, beforeBlob, res) {
  for (const key of ["beforeUrl", "afterUrl"]) if (state[key]) URL.revokeObjectURL(state[key]);
  state.beforeUrl = URL.createObjectURL(beforeBlob);
  state.afterUrl = URL.createObjectURL(afterBlob);
  const after = $("after");
  after.removeAttribute("data-ready");
  await Promise.all([loaded($("before"), state.beforeUrl), loaded(after, state.afterUrl)]);
  const w = after.naturalWidth, h = after.naturalHeight;
  const [inW, inH] = res.inSize;
  // face outlines in result pixels (boxes come in input pixels)
  const sx = w / (inW || w), sy = h / (inH || h);
  for (const svg of [$("faces"), $("faces-before")]) {  // outlines on both images, so the slider keeps them whole
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.replaceChildren();
    for (const f of res.faces) {
      const [x0, y0, x1, y1] = f.box;
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      r.setAttribute("x", x0 * sx); r.setAttribute("y", y0 * sy);
      r.setAttribute("width", (x1 - x0) * sx); r.setAttribute("height", (y1 - y0) * sy);
      r.setAttribute("class", "face");
      svg.appendChild(r);
    }
  }
  const n = res.faces.length;
  $("faces-count").textContent = res.mode !== "whole" ? ""
    : n ? `${n} face${n === 1 ? "" : "s"} found (outlined)` : "No faces found";
  const how = res.asked === "auto" ? `Auto chose: ${LABEL[res.mode]}` : LABEL[res.mode];
  $("used").textContent = res.model ? `${how}, model ${res.model}` : how;
  hint(res);
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "image";
  $("download").href = state.afterUrl;
  $("download").download = `${stem}_x8.png`;
  $("sizes").textContent = `${inW} x ${inH} px  ->  ${w} x ${h} px`;
  $("result").hidden = false;
  after.dataset.ready = "1";
}

function setSplit() {
  $("compare").style.setProperty("--split", `${$("split").value}%`);
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", () => choose($("file").files[0]));
  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); choose(e.dataTransfer.files[0]); });
  $("run").addEventListener("click", run);
  for (const r of document.querySelectorAll('input[name="mode"]')) {
    r.addEventListener("change", () => { modeChanged(); if (state.file) run(); });
  }
  $("model").addEventListener("change", () => { if (state.file) run(); });
  $("ensemble").addEventListener("change", () => { if (state.file) run(); });
  for (const r of document.querySelectorAll('input[name="view"]')) {
    r.addEventListener("change", () => {
      const side = document.querySelector('input[name="view"]:checked').value === "side";
      $("compare").classList.toggle("side", side);
      $("compare").classList.toggle("slider", !side);
    });
  }
  $("split").addEventListener("input", setSplit);
  setSplit();
  modeChanged();
  loadInfo();
}

setup();
