// The pkdn page: pick or drop an image, POST it to /api/sr, show before/after. No external code.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { file: null, beforeUrl: null, afterUrl: null, abort: null, timer: null, inSize: null,
  defaults: {}, modelPicked: false };
const HELP = {
  crop: "A small, tightly cropped face (the model was trained on 16 x 16 px faces).",
  whole: "A photo: faces are found, enhanced and pasted back; the rest is enlarged.",
};

function mode() { return document.querySelector('input[name="mode"]:checked').value; }

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
    const sel = $("model");
    state.defaults = info.default_models || {};
    for (const name of info.models) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = name;
      opt.selected = name === state.defaults[mode()];
      sel.appendChild(opt);
    }
    if (!info.modes.whole) {
      $("mode-whole").disabled = true;
      $("mode-whole").parentElement.title = "whole-photo mode is not installed in this pkdn";
      $("mode-whole").parentElement.append(" (not installed)");
    }
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

async function run() {
  if (!state.file) return;
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  showError("");
  $("run").disabled = true;
  $("result").setAttribute("aria-busy", "true");
  const t0 = performance.now();
  clearInterval(state.timer);
  const tick = () => setStatus(`Working... ${((performance.now() - t0) / 1000).toFixed(1)} s`, true);
  tick();
  state.timer = setInterval(tick, 100);
  const form = new FormData();
  form.append("image", state.file);
  form.append("mode", mode());
  form.append("model", $("model").value);
  form.append("ensemble", $("ensemble").value);
  try {
    const resp = await fetch("/api/sr", { method: "POST", body: form, signal: abort.signal });
    if (!resp.ok) {
      let msg = `HTTP ${resp.status}`;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    const blob = await resp.blob();
    const faces = JSON.parse(resp.headers.get("X-Pkdn-Faces") || "[]");
    const inSize = (resp.headers.get("X-Pkdn-Input-Size") || "0x0").split("x").map(Number);
    const notes = JSON.parse(resp.headers.get("X-Pkdn-Notes") || "[]");
    await show(blob, faces, inSize, mode());
    $("notes").textContent = notes.map((n) => `Note: ${n}.`).join(" ");
    $("notes").hidden = !notes.length;
    setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s`, false);
  } catch (e) {
    if (e.name === "AbortError") return;
    setStatus("", false);
    $("notes").hidden = true;
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

async function show(blob, faces, inSize, usedMode) {
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  if (state.afterUrl) URL.revokeObjectURL(state.afterUrl);
  state.beforeUrl = URL.createObjectURL(state.file);
  state.afterUrl = URL.createObjectURL(blob);
  const after = $("after");
  after.removeAttribute("data-ready");
  await Promise.all([loaded($("before"), state.beforeUrl), loaded(after, state.afterUrl)]);
  const w = after.naturalWidth, h = after.naturalHeight;
  // face outlines in result pixels (boxes come in input pixels)
  const sx = w / (inSize[0] || w), sy = h / (inSize[1] || h);
  for (const svg of [$("faces"), $("faces-before")]) {  // outlines on both images, so the slider keeps them whole
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.replaceChildren();
    for (const f of faces) {
      const [x0, y0, x1, y1] = f.box;
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      r.setAttribute("x", x0 * sx); r.setAttribute("y", y0 * sy);
      r.setAttribute("width", (x1 - x0) * sx); r.setAttribute("height", (y1 - y0) * sy);
      r.setAttribute("class", "face");
      svg.appendChild(r);
    }
  }
  $("faces-count").textContent = usedMode === "whole"
    ? `${faces.length} face${faces.length === 1 ? "" : "s"} found (outlined)` : "";
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "image";
  $("download").href = state.afterUrl;
  $("download").download = `${stem}_x8.png`;
  $("sizes").textContent = `${inSize[0]} x ${inSize[1]} px  ->  ${w} x ${h} px`;
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
    r.addEventListener("change", () => {
      $("mode-help").textContent = HELP[mode()];
      // each mode has its own default model (whole photos: the one measured best on photos) until one is picked
      if (!state.modelPicked && state.defaults[mode()]) $("model").value = state.defaults[mode()];
      if (state.file) run();
    });
  }
  $("model").addEventListener("change", () => { state.modelPicked = true; if (state.file) run(); });
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
  loadInfo();
}

setup();
