// Runs a web page's scripts as a browser would, far enough for the README's "Use your model in a
// web page" example: the page's <script src> files and inline scripts, in order, in one global
// context (window = the global), with the page's folder served over HTTP on 127.0.0.1 so that
// fetch("sheep.gen.json") resolves against the page's address, and a canvas whose 2D context
// records the lines drawn on it. Math.random is seeded, so a page draws the same sketch each run.
//
//   node web_page.js PAGE.html OUT.json
//
// OUT: {"lines": [[x0, y0, x1, y1], ...], "errors": [...], "logs": [...]}. Glue only: the page
// and @magenta/sketch's browser bundle (dist/magentasketch.js) do the work.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const vm = require("vm");

const [pagePath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node web_page.js PAGE.html OUT.json");
  process.exit(2);
}
const dir = path.dirname(path.resolve(pagePath));
const html = fs.readFileSync(pagePath, "utf8");
const out = { lines: [], errors: [], logs: [] };
const short = (e) => String(e && e.stack || e).split("\n").filter((l) => l.length < 300).slice(0, 8).join("\n");

function canvas() {
  let at = null;
  let pending = [];
  const ctx = {
    beginPath() { pending = []; at = null; },
    moveTo(x, y) { at = [x, y]; },
    lineTo(x, y) { if (at) pending.push([at[0], at[1], x, y]); at = [x, y]; },
    stroke() { out.lines.push(...pending); pending = []; },
  };
  return { width: 400, height: 400, getContext: (kind) => (kind === "2d" ? ctx : null) };
}

function serve() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const file = path.join(dir, path.basename(decodeURIComponent(req.url.split("?")[0])));
      fs.readFile(file, (err, data) => {
        if (err) { res.writeHead(404, { "Connection": "close" }); res.end(); return; }
        res.writeHead(200, { "Content-Type": "application/json", "Connection": "close" });
        res.end(data);
      });
    });
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

async function main() {
  const srv = await serve();
  const base = `http://127.0.0.1:${srv.address().port}/`;
  const elements = {};
  const page = {
    console: { log: (...a) => out.logs.push(a.join(" ")), warn: (...a) => out.logs.push(a.join(" ")),
               error: (...a) => out.errors.push(a.join(" ")), info: (...a) => out.logs.push(a.join(" ")) },
    document: { getElementById: (id) => (elements[id] = elements[id] || canvas()),
                createElement: (tag) => (tag === "canvas" ? canvas() : {}) }, // no WebGL here: tfjs's cpu backend
    fetch: (url, init) => fetch(new URL(url, base), init),
    setTimeout, clearTimeout, setInterval, clearInterval, atob, btoa, performance,
  };
  page.window = page;
  page.self = page;
  vm.createContext(page);
  // Math.random from a fixed seed (mulberry32), so that the page draws the same sketch every run
  vm.runInContext(`(() => { let a = 1234567;
    Math.random = () => { a = (a + 0x6D2B79F5) | 0; let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; })();`, page);
  const ready = []; // every promise the page starts through initialize(), to wait for
  const scripts = [...html.matchAll(/<script(?:\s+src="([^"]+)")?\s*>([\s\S]*?)<\/script>/g)];
  if (!scripts.length) throw new Error("the page has no <script>");
  process.on("unhandledRejection", (e) => out.errors.push(short(e)));
  try {
    for (const [, src, body] of scripts) {
      const code = src ? fs.readFileSync(path.join(dir, src), "utf8") : body;
      vm.runInContext(code, page, { filename: src || "inline script" });
      if (src && page.ms && page.ms.SketchRNN && !page.ms.SketchRNN.prototype.__watched) {
        const init = page.ms.SketchRNN.prototype.initialize;
        page.ms.SketchRNN.prototype.initialize = function (...args) {
          const p = init.apply(this, args);
          ready.push(p);
          return p;
        };
        page.ms.SketchRNN.prototype.__watched = true;
      }
    }
    await Promise.allSettled(ready);
    await new Promise((r) => setTimeout(r, 200)); // the callbacks after initialize() run, then they are done
  } catch (e) {
    out.errors.push(short(e));
  } finally {
    srv.close();
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
