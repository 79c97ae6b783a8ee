// sketchrnn web app: Finish my drawing, Dream, Morph. Plain JavaScript, no build step, no CDN.
//
// Units: the pads draw in CSS pixels; the API speaks stroke-3 rows [dx, dy, p] in the model's data
// units. One factor per model converts them: data units per pixel = scale_factor / 20 (the official
// models' offsets have standard deviation scale_factor, so a sketch drawn at this factor has offsets
// of about 20 px). Drawn strokes are simplified (Ramer-Douglas-Peucker, epsilon 2 px) at pen-up.
//
// Stroke-3 conventions (as sketchrnn.data): the first drawn point is the origin and row 0 is the move
// from it to the second point (a lone first point counts twice); p = 1 lifts the pen after the point.
// A returned sketch is drawn from (0, 0) without its origin, as sketchrnn.render draws it; an ending
// starts at the drawing's last point, and a point owns the segment from its predecessor.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const EPSILON = 2; // px, the simplification tolerance (magenta-js's simplifyLines)
const PIXEL_STD = 20; // px per data-unit standard deviation
const SWEEP = [0.1, 0.3, 0.5, 0.7, 0.9, 1.1];

// ----------------------------------------------------------------------------------- geometry

/** Distance of point p from the segment a-b. */
function segmentDistance(p, a, b) {
  const vx = b[0] - a[0], vy = b[1] - a[1];
  const len2 = vx * vx + vy * vy;
  let t = len2 > 0 ? ((p[0] - a[0]) * vx + (p[1] - a[1]) * vy) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(p[0] - a[0] - t * vx, p[1] - a[1] - t * vy);
}

/** Ramer-Douglas-Peucker: the points of a polyline that keep it within eps of the original. */
export function simplify(points, eps = EPSILON) {
  if (points.length < 3) return points.map((p) => [p[0], p[1]]);
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [a, b] = stack.pop();
    let worst = -1, at = -1;
    for (let i = a + 1; i < b; i++) {
      const d = segmentDistance(points[i], points[a], points[b]);
      if (d > worst) { worst = d; at = i; }
    }
    if (worst > eps) {
      keep[at] = 1;
      stack.push([a, at], [at, b]);
    }
  }
  return points.filter((_, i) => keep[i]).map((p) => [p[0], p[1]]);
}

const round3 = (v) => Math.round(v * 1000) / 1000;

/** Polylines (px) as stroke-3 rows in data units: the first point is the origin. */
export function linesToStrokes(lines, factor) {
  const pts = [];
  for (const line of lines) line.forEach((p, j) => pts.push([p[0], p[1], j === line.length - 1 ? 1 : 0]));
  if (!pts.length) return [];
  if (lines[0].length === 1) pts.unshift(pts[0]); // a lone first point counts twice: its row is (0, 0, 1)
  const rows = [];
  for (let k = 1; k < pts.length; k++) {
    rows.push([round3((pts[k][0] - pts[k - 1][0]) * factor), round3((pts[k][1] - pts[k - 1][1]) * factor), pts[k][2]]);
  }
  return rows;
}

/**
 * Stroke-3 rows (data units) as polylines (px) starting at `start`. `lifted`: the pen is up at
 * `start` (the first point starts a new line); else the first line begins at `start`.
 */
export function strokesToLines(rows, factor, start = [0, 0], lifted = true) {
  const lines = [];
  let x = start[0], y = start[1];
  let line = lifted ? [] : [[x, y]];
  for (const [dx, dy, p] of rows) {
    x += dx / factor;
    y += dy / factor;
    line.push([x, y]);
    if (p >= 0.5) { lines.push(line); line = []; }
  }
  if (line.length > (lifted ? 0 : 1)) lines.push(line);
  return lines;
}

function pathData(line) {
  const f = (v) => (Math.round(v * 100) / 100).toString();
  if (line.length === 1) return `M${f(line[0][0])} ${f(line[0][1])}l0 0`; // a dot (round caps)
  return line.map((p, i) => `${i ? "L" : "M"}${f(p[0])} ${f(p[1])}`).join("");
}

function bounds(groups) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const lines of groups) for (const line of lines) for (const [x, y] of line) {
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  return x0 <= x1 ? { x0, y0, x1, y1 } : null;
}

function svgEl(name, attrs = {}) {
  const el = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** Draw groups of lines into an SVG cell, one <path> per stroke, fitted to the cell. */
function drawCell(svg, groups, minSize = 60) {
  svg.replaceChildren();
  for (const { lines, cls } of groups) for (const line of lines) svg.append(svgEl("path", { d: pathData(line), class: cls }));
  const box = bounds(groups.map((g) => g.lines));
  if (!box) { svg.setAttribute("viewBox", "0 0 100 100"); return; }
  const size = Math.max(box.x1 - box.x0, box.y1 - box.y0, minSize) * 1.12;
  const cx = (box.x0 + box.x1) / 2, cy = (box.y0 + box.y1) / 2;
  svg.setAttribute("viewBox", `${cx - size / 2} ${cy - size / 2} ${size} ${size}`);
}

// ------------------------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, body) {
    super(describeError(status, body));
    this.status = status;
  }
}

function describeError(status, body) {
  if (status === 503) return "the server is busy: try again in a moment";
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = (d.loc || []).filter((x) => x !== "body").join(".");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("; ");
  }
  if (typeof detail === "string") return detail;
  return `the server answered ${status}`;
}

async function post(url, body, signal) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** POST, then read the server-sent events of the response: onFrame for each, the last ({done}) returned. */
async function postStream(url, body, signal, onFrame) {
  const res = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body), signal,
  });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      const message = JSON.parse(data);
      if (message.done) {
        reader.cancel().catch(() => {});
        if (message.error) throw new Error(message.error);
        return message;
      }
      onFrame(message);
    }
  }
  throw new Error("the stream ended before the sketches were done");
}

// ------------------------------------------------------------------------------------ state

const state = { models: [], model: null };
const $ = (id) => document.getElementById(id);

function factor() { return state.model.scale_factor / PIXEL_STD; }

const messages = {}; // the last status line of each tab, shown again when the tab is

/** The status line of `tab` (the current one by default), shown at once if that tab is open. */
function setStatus(text, error = false, tab = document.body.dataset.tab) {
  messages[tab] = { text, error };
  if (tab !== document.body.dataset.tab) return;
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

function seedOf(input) {
  const v = input.value.trim();
  return v === "" ? null : Math.max(0, Math.floor(Number(v)));
}

/** A fresh random seed (shown to the user so that a picture can be drawn again). */
function randomSeed() { return Math.floor(Math.random() * 2 ** 31); }

// ------------------------------------------------------------------------------------ pads

/** A drawing surface: pointer events (mouse, pen, finger) into simplified polylines in px. */
class Pad {
  constructor(svg, onStroke, onChange) {
    this.svg = svg;
    this.lines = []; // simplified polylines, px
    this.kinds = []; // "given" (drawn) or "continuation" (adopted from the model), per line
    this.groups = []; // lines added per action, for undo
    this.current = null;
    this.pointer = null;
    this.onStroke = onStroke;
    this.onChange = onChange; // the lines changed (drawn, adopted, set, undone, cleared)
    svg.addEventListener("pointerdown", (e) => this.down(e));
    svg.addEventListener("pointermove", (e) => this.move(e));
    svg.addEventListener("pointerup", (e) => this.up(e));
    svg.addEventListener("pointercancel", (e) => this.up(e));
  }

  /** A pointer's position in the pad's own units (CSS px at the pad's natural size). */
  position(e) {
    const ctm = this.svg.getScreenCTM();
    if (!ctm) { const r = this.svg.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
    return [p.x, p.y];
  }

  /** The view: the pad's own size, zoomed out (never in) so that every line stays in sight, as an
   * adopted ending may run past the edge. */
  fit() {
    const r = this.svg.getBoundingClientRect();
    const box = bounds([this.lines]);
    const m = 12;
    // only lines that leave the pad zoom it out (not every stroke that comes near the edge)
    if (!box || !r.width || (box.x0 >= 0 && box.y0 >= 0 && box.x1 <= r.width && box.y1 <= r.height)) {
      this.svg.removeAttribute("viewBox"); // one unit per CSS pixel: pointer and drawing agree
      return;
    }
    const x0 = Math.min(0, box.x0 - m), y0 = Math.min(0, box.y0 - m);
    const x1 = Math.max(r.width, box.x1 + m), y1 = Math.max(r.height, box.y1 + m);
    const s = Math.max((x1 - x0) / r.width, (y1 - y0) / r.height);
    const w = r.width * s, h = r.height * s;
    this.svg.setAttribute("viewBox", `${x0 - (w - (x1 - x0)) / 2} ${y0 - (h - (y1 - y0)) / 2} ${w} ${h}`);
  }

  add(point) {
    const last = this.current[this.current.length - 1];
    if (!last || last[0] !== point[0] || last[1] !== point[1]) this.current.push(point);
  }

  down(e) {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    if (this.pointer !== null) return;
    e.preventDefault();
    this.pointer = e.pointerId;
    try { this.svg.setPointerCapture(e.pointerId); } catch (_) { /* synthetic pointers */ }
    this.current = [];
    this.add(this.position(e));
    this.currentPath = svgEl("path", { class: "current", d: pathData(this.current) });
    this.svg.append(this.currentPath);
  }

  move(e) {
    if (e.pointerId !== this.pointer) return;
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) this.add(this.position(ev));
    this.currentPath.setAttribute("d", pathData(this.current));
  }

  up(e) {
    if (e.pointerId !== this.pointer) return;
    this.pointer = null;
    if (e.type === "pointerup") this.add(this.position(e));
    const line = simplify(this.current);
    this.current = null;
    this.currentPath.remove();
    this.push([line], "given");
    if (this.onStroke) this.onStroke();
  }

  push(lines, kind) {
    if (!lines.length) return;
    for (const line of lines) { this.lines.push(line); this.kinds.push(kind); }
    this.groups.push(lines.length);
    this.render();
    if (this.onChange) this.onChange();
  }

  set(lines) { this.clear(); this.push(lines, "given"); }

  undo() {
    const n = this.groups.pop();
    if (!n) return false;
    this.lines.splice(-n);
    this.kinds.splice(-n);
    this.render();
    if (this.onChange) this.onChange();
    return true;
  }

  clear() {
    this.lines = []; this.kinds = []; this.groups = [];
    this.render();
    if (this.onChange) this.onChange();
  }

  render() {
    this.svg.querySelectorAll("path:not(.current)").forEach((p) => p.remove());
    this.lines.forEach((line, i) => {
      this.svg.insertBefore(svgEl("path", { d: pathData(line), class: this.kinds[i] }), this.currentPath && this.currentPath.isConnected ? this.currentPath : null);
    });
    this.svg.dataset.strokes = String(this.lines.length);
    this.fit();
  }

  /** The drawing as stroke-3 rows in the current model's data units. */
  strokes() { return linesToStrokes(this.lines, factor()); }

  /** A standalone SVG document of the drawing (white background, fitted with a margin). */
  toSVG() {
    const box = bounds([this.lines]) || { x0: 0, y0: 0, x1: 100, y1: 100 };
    const m = 12, w = box.x1 - box.x0 + 2 * m, h = box.y1 - box.y0 + 2 * m;
    const paths = this.lines.map((line, i) => {
      const colour = this.kinds[i] === "continuation" ? "#d62728" : "#000";
      return `<path d="${pathData(line)}" stroke="${colour}"/>`;
    }).join("");
    return `<svg xmlns="${SVGNS}" width="${Math.ceil(w)}" height="${Math.ceil(h)}" viewBox="${box.x0 - m} ${box.y0 - m} ${w} ${h}">` +
      `<rect x="${box.x0 - m}" y="${box.y0 - m}" width="${w}" height="${h}" fill="#fff"/>` +
      `<g fill="none" stroke-width="3" stroke-linecap="round" stroke-linejoin="round">${paths}</g></svg>`;
  }
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function downloadPNG(svgText, name, scale = 2) {
  const image = new Image();
  const url = URL.createObjectURL(new Blob([svgText], { type: "image/svg+xml" }));
  image.onload = () => {
    const canvas = document.createElement("canvas");
    canvas.width = Math.ceil(image.width * scale);
    canvas.height = Math.ceil(image.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    URL.revokeObjectURL(url);
    canvas.toBlob((blob) => download(blob, name), "image/png");
  };
  image.src = url;
}

// ------------------------------------------------------------------------------------ cells

/** A grid (or row) of SVG cells whose sketches are filled by a request, streamed or at once. */
class Board {
  constructor(el, tab) {
    this.el = el;
    this.tab = tab; // whose status line tells of its runs
    this.run = 0;
    this.abort = null;
    this.cells = [];
    this.pending = false;
  }

  /** Start a new run of n cells; aborts the previous run's request. Returns the run's signal. */
  reset(n, columns, make) {
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    this.run += 1;
    this.el.dataset.run = String(this.run);
    this.el.dataset.state = n ? "drawing" : "empty";
    this.el.style.setProperty("--columns", String(columns));
    this.el.replaceChildren();
    this.cells = [];
    for (let i = 0; i < n; i++) {
      const svg = svgEl("svg", { class: "cell", "data-index": String(i), "data-state": "drawing", role: "img" });
      const cell = Object.assign({ svg, rows: [], done: false }, make ? make(i) : {});
      if (cell.label) {
        const fig = document.createElement("figure");
        fig.className = "labelled";
        const cap = document.createElement("figcaption");
        cap.textContent = cell.label;
        fig.append(svg, cap);
        this.el.append(fig);
      } else {
        this.el.append(svg);
      }
      this.cells.push(cell);
    }
    this.drawAll();
    return { run: this.run, signal: this.abort.signal };
  }

  clear() { this.reset(0, 3); }

  /** Streamed points [i, dx, dy, p]: appended, drawn at the next animation frame. */
  points(run, points) {
    if (run !== this.run) return;
    for (const [i, dx, dy, p] of points) if (this.cells[i]) this.cells[i].rows.push([dx, dy, p]);
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.drawAll(); });
    }
  }

  /** The final sketches of a run. */
  finish(run, sketches) {
    if (run !== this.run) return false;
    sketches.forEach((rows, i) => { if (this.cells[i]) { this.cells[i].rows = rows; this.cells[i].done = true; } });
    this.drawAll();
    this.el.dataset.state = "done";
    return true;
  }

  /** A run that failed: no cells (half-drawn ones would look like results), the reason in red. */
  fail(run, error) {
    if (run !== this.run || error.name === "AbortError") return;
    this.refuse(error.message);
  }

  /** No run: the board is empty, in the error state, and the status line says why. */
  refuse(message) {
    this.reset(0, 3);
    this.abort = null;
    this.el.dataset.state = "error";
    setStatus(message, true, this.tab);
  }

  drawAll() {
    for (const cell of this.cells) {
      cell.svg.dataset.state = cell.done ? "done" : "drawing";
      cell.svg.dataset.points = String(cell.rows.length);
      this.drawOne(cell);
    }
  }

  drawOne(cell) { // whole sketches from the origin, black
    drawCell(cell.svg, [{ lines: strokesToLines(cell.rows, cell.factor || factor()), cls: "sketch" }]);
  }
}

/** The endings of Finish my drawing: the drawing (black) and each ending (red) from its last point. */
class Endings extends Board {
  drawOne(cell) {
    const given = cell.given;
    const last = given.length ? given[given.length - 1] : null;
    const start = last ? last[last.length - 1] : [0, 0];
    cell.continuation = strokesToLines(cell.rows, cell.factor, start, true);
    drawCell(cell.svg, [{ lines: given, cls: "given" }, { lines: cell.continuation, cls: "continuation" }]);
  }
}

// ------------------------------------------------------------------------------------ Finish my drawing

const pad = new Pad($("pad"), () => { if ($("auto").checked) finish(); });
const endings = new Endings($("endings"), "finish");

async function finish() {
  if (!state.model) return;
  if (!pad.lines.length) { endings.clear(); setStatus("draw something first: the model finishes it", false, "finish"); return; }
  const n = Number($("alternatives").value);
  const f = factor();
  const given = pad.lines.map((l) => l.map((p) => [p[0], p[1]]));
  const strokes = linesToStrokes(given, f);
  const most = state.model.max_seq_len - 1; // an ending needs room for one point at least
  if (strokes.length > most) {
    endings.refuse(`the drawing has ${strokes.length} points, and ${state.model.name} draws sketches of at most ` +
      `${state.model.max_seq_len}: there is no room left for an ending. Undo or clear, or pick a model that draws longer sketches`);
    return;
  }
  const { run, signal } = endings.reset(n, Math.ceil(Math.sqrt(n)), () => ({ given, factor: f }));
  const body = {
    model: state.model.id, strokes, n,
    temperature: Number($("temperature").value), seed: seedOf($("seed")),
  };
  if (state.model.conditional) body.z = $("zmode").value;
  setStatus(`${state.model.name} is drawing ${n} ending${n === 1 ? "" : "s"} of ${body.strokes.length} points at τ ${body.temperature}…`, false, "finish");
  try {
    const done = await postStream("/api/complete/stream", body, signal, (m) => endings.points(run, m.points || []));
    if (endings.finish(run, done.completions)) setStatus(`${n} ending${n === 1 ? "" : "s"}: click one to keep drawing from it`, false, "finish");
  } catch (error) {
    endings.fail(run, error);
  }
}

function adopt(index) {
  const cell = endings.cells[index];
  if (!cell || !cell.done || !cell.continuation.length) return;
  pad.push(cell.continuation.map((l) => l.map((p) => [p[0], p[1]])), "continuation");
  endings.clear();
  setStatus(`kept ending ${index + 1}: keep drawing (Undo takes it back)`, false, "finish");
}

$("endings").addEventListener("click", (e) => {
  const svg = e.target.closest(".cell");
  if (svg) adopt(Number(svg.dataset.index));
});
$("finish").addEventListener("click", () => finish());
$("undo").addEventListener("click", () => { if (pad.undo()) afterUndo(); });
$("clear").addEventListener("click", () => { pad.clear(); endings.clear(); setStatus("cleared", false, "finish"); });
$("download-svg").addEventListener("click", () => download(new Blob([pad.toSVG()], { type: "image/svg+xml" }), "sketch.svg"));
$("download-png").addEventListener("click", () => downloadPNG(pad.toSVG(), "sketch.png"));
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "z" && !$("panel-finish").hidden && pad.undo()) { e.preventDefault(); afterUndo(); }
});

/** The last stroke (or kept ending) was taken back: new endings, or none and a status that says so. */
function afterUndo() {
  if (pad.lines.length && $("auto").checked) { finish(); return; }
  endings.clear(); // the endings were of the drawing before the undo
  setStatus(pad.lines.length ? "took the last stroke back: Finish draws new endings" : "the pad is empty: draw something",
    false, "finish");
}

function slider(id) {
  const input = $(id), out = $(`${id}-value`);
  const show = () => { out.textContent = Number(input.value).toFixed(2); };
  input.addEventListener("input", show);
  show();
  return input;
}
slider("temperature").addEventListener("change", () => { if (endings.cells.length) finish(); });
$("alternatives").addEventListener("change", () => { if (endings.cells.length || pad.lines.length) finish(); });
$("zmode").addEventListener("change", () => { if (endings.cells.length) finish(); });

// ------------------------------------------------------------------------------------ Dream

const dreams = new Board($("dreams"), "dream");
const sweep = new Board($("sweep"), "dream");
slider("dream-temperature");

async function dream() {
  const n = Number($("dream-n").value);
  const temperature = Number($("dream-temperature").value);
  const seed = seedOf($("dream-seed"));
  const model = state.model.id;
  const f = factor();
  const { run, signal } = dreams.reset(n, Math.ceil(Math.sqrt(n)), () => ({ factor: f }));
  const sweepSeed = seed === null ? randomSeed() : seed;
  const sweepRun = sweep.reset(SWEEP.length, SWEEP.length, (i) => ({ factor: f, label: `τ ${SWEEP[i]}` }));
  setStatus(`${state.model.name} is dreaming ${n} sketches at τ ${temperature}, and one seed (${sweepSeed}) at τ ${SWEEP.join(", ")}…`, false, "dream");
  const sweeping = Promise.all(SWEEP.map((t) => post("/api/sample", { model, n: 1, temperature: t, seed: sweepSeed }, sweepRun.signal)))
    .then((answers) => sweep.finish(sweepRun.run, answers.map((a) => a.sketches[0])))
    .catch((error) => sweep.fail(sweepRun.run, error));
  try {
    const done = await postStream("/api/sample/stream", { model, n, temperature, seed }, signal, (m) => dreams.points(run, m.points || []));
    dreams.finish(run, done.sketches);
    await sweeping;
    if (dreams.run === run && sweep.el.dataset.state === "done") setStatus(`${n} dreams at τ ${temperature}; the sweep used seed ${sweepSeed}`, false, "dream");
  } catch (error) {
    dreams.fail(run, error);
  }
}
$("dream-go").addEventListener("click", () => dream());

// ------------------------------------------------------------------------------------ Morph

// results go when the sketches they were made of change
const pads = {
  a: new Pad($("pad-a"), null, () => { morphRow.clear(); variations.clear(); }),
  b: new Pad($("pad-b"), null, () => morphRow.clear()),
};
const morphRow = new Board($("morph-row"), "morph");
const variations = new Board($("variations"), "morph");
slider("morph-temperature");

/** A sketch sampled by the model, placed in the middle of a pad (its origin included, so that it
 * encodes back to exactly the sampled rows). */
async function dreamInto(which) {
  const target = pads[which];
  try {
    const seed = seedOf($("morph-seed"));
    const answer = await post("/api/sample", {
      model: state.model.id, n: 1, temperature: 0.3, seed: seed === null ? randomSeed() : seed + (which === "b" ? 1 : 0),
    });
    const f = factor();
    const lines = strokesToLines(answer.sketches[0], f, [0, 0], false);
    const box = bounds([lines]);
    const r = target.svg.getBoundingClientRect();
    const size = Math.max(box.x1 - box.x0, box.y1 - box.y0, 1);
    const s = Math.min(1, (0.85 * Math.min(r.width, r.height)) / size); // shrink to fit the pad, never enlarge
    const ox = r.width / 2 - s * (box.x0 + box.x1) / 2, oy = r.height / 2 - s * (box.y0 + box.y1) / 2;
    target.set(lines.map((l) => l.map(([x, y]) => [ox + s * x, oy + s * y])));
    setStatus(`sketch ${which.toUpperCase()}: dreamt by ${state.model.name}`, false, "morph");
  } catch (error) {
    setStatus(error.message, true, "morph");
  }
}

document.querySelectorAll("button.pick").forEach((button) => button.addEventListener("click", () => {
  const which = button.dataset.pad;
  if (button.dataset.from === "clear") pads[which].clear();
  else if (button.dataset.from === "finish") {
    if (!pad.lines.length) { setStatus("the Finish tab has no drawing yet", true, "morph"); return; }
    const box = bounds([pad.lines]);
    const r = pads[which].svg.getBoundingClientRect();
    const s = Math.min(1, (0.85 * Math.min(r.width, r.height)) / Math.max(box.x1 - box.x0, box.y1 - box.y0, 1));
    const ox = r.width / 2 - s * (box.x0 + box.x1) / 2, oy = r.height / 2 - s * (box.y0 + box.y1) / 2;
    pads[which].set(pad.lines.map((l) => l.map(([x, y]) => [ox + s * x, oy + s * y])));
  } else dreamInto(which);
}));

function needs(which) {
  if (pads[which].lines.length) return true;
  setStatus(`draw or pick sketch ${which.toUpperCase()} first`, true, "morph");
  return false;
}

async function morph() {
  if (!needs("a") || !needs("b")) return;
  const steps = Number($("morph-steps").value);
  const f = factor();
  const { run, signal } = morphRow.reset(steps, steps, (i) => ({ factor: f, label: i === 0 ? "A" : i === steps - 1 ? "B" : "" }));
  const body = {
    model: state.model.id, a: pads.a.strokes(), b: pads.b.strokes(), steps,
    temperature: Number($("morph-temperature").value), seed: seedOf($("morph-seed")),
  };
  setStatus(`decoding ${steps} sketches from A's z to B's…`, false, "morph");
  try {
    const answer = await post("/api/interpolate", body, signal);
    if (morphRow.finish(run, answer.sketches)) setStatus(`A → B in ${steps} steps`, false, "morph");
  } catch (error) {
    morphRow.fail(run, error);
  }
}

async function vary() {
  if (!needs("a")) return;
  const f = factor();
  const { run, signal } = variations.reset(9, 3, () => ({ factor: f }));
  const body = {
    model: state.model.id, strokes: pads.a.strokes(), n: 9,
    temperature: Number($("morph-temperature").value), seed: seedOf($("morph-seed")),
  };
  setStatus("decoding nine sketches from A's z…", false, "morph");
  try {
    const answer = await post("/api/variations", body, signal);
    if (variations.finish(run, answer.sketches)) setStatus("nine variations of A", false, "morph");
  } catch (error) {
    variations.fail(run, error);
  }
}
$("morph-go").addEventListener("click", () => morph());
$("variations-go").addEventListener("click", () => vary());

// ------------------------------------------------------------------------------------ tabs, models

function showTab(name) {
  document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
  document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== `panel-${name}`; });
  document.body.dataset.tab = name;
  const { text, error } = messages[name] || { text: "", error: false };
  setStatus(text, error, name);
  pads.a.fit(); pads.b.fit(); pad.fit(); // a hidden pad has no size to fit to
}
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => { if (!b.disabled) showTab(b.dataset.tab); }));

function selectModel(id) {
  const model = state.models.find((m) => m.id === id) || state.models[0];
  const changed = state.model && state.model.id !== model.id;
  state.model = model;
  $("model").value = model.id;
  document.body.classList.toggle("conditional", model.conditional);
  document.body.dataset.model = model.id;
  $("model-info").textContent = `${model.cell}, ${model.num_mixture} mixtures, ${model.conditional ? "conditional (VAE)" : "unconditional"}, sketches of up to ${model.max_seq_len} points`;
  const morphTab = $("tab-morph");
  morphTab.disabled = !model.conditional;
  morphTab.title = model.conditional ? "interpolate and vary sketches in the latent space" : "needs a conditional (VAE) model";
  $("dream-hint").textContent = model.conditional
    ? "Sketches decoded from z drawn from the prior, drawn as they are sampled, and below them one seed at rising temperatures."
    : "New sketches from the model, drawn as they are sampled, and below them one seed at rising temperatures.";
  if (!model.conditional && document.body.dataset.tab === "morph") showTab("finish");
  if (changed) {
    setStatus(`model: ${model.name}`);
    if (pad.lines.length && endings.cells.length) finish();
  }
}
$("model").addEventListener("change", (e) => selectModel(e.target.value));

async function start() {
  messages.finish = { text: $("status").textContent, error: false }; // the page's own "loading…" line
  showTab("finish");
  try {
    const res = await fetch("/api/models");
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    state.models = (await res.json()).models;
  } catch (error) {
    setStatus(`could not list the models: ${error.message}`, true);
    return;
  }
  const select = $("model");
  for (const m of state.models) {
    const option = document.createElement("option");
    option.value = m.id;
    option.textContent = m.conditional ? `${m.name} (VAE)` : m.name;
    select.append(option);
  }
  if (!state.models.length) { setStatus("the server has no models", true); return; }
  selectModel(state.models[0].id);
  document.body.dataset.ready = "true";
  setStatus(`${state.models.length} model${state.models.length === 1 ? "" : "s"}: draw something`, false, "finish");
}

start();
