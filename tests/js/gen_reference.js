// Runs the official JavaScript library, @magenta/sketch 0.2.0 (on @tensorflow/tfjs 1.7.4, as
// package.json here pins them; `npm ci` in this folder installs them), on a .gen.json file and
// writes what tests/test_export.py compares with our model.
//
//   node gen_reference.js REQUEST.json OUT.json
//
// REQUEST: {"model": PATH, "pixel_factor": 1, "drawings": [[[dx, dy, p1, p2, p3], ...], ...]}
// (rows in data units). The file is loaded the way a web page loads it, `new ms.SketchRNN(url)`
// and `initialize()` (a fetch from a local HTTP server on 127.0.0.1, then instantiateFromJSON).
// For each drawing, from `zeroState()`, OUT holds after `update(x, state)` for x = `zeroInput()`
// (the start token (0, 0, 1, 0, 0)) and every row: `getPDF(state, 1.0)` (temperature 1: the
// plain model output) and the state's h and c. This file is glue only: every number in OUT comes
// from the library.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");

const [requestPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node gen_reference.js REQUEST.json OUT.json");
  process.exit(2);
}
if (typeof atob === "undefined") { // a global from Node 16 on
  global.atob = (s) => Buffer.from(s, "base64").toString("binary");
}
if (typeof fetch === "undefined") { // a global from Node 18 on; enough of it for initialize()
  global.fetch = (url) => new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => { body += chunk; });
      res.on("end", () => resolve({ json: async () => JSON.parse(body) }));
    }).on("error", reject);
  });
}
const log = console.log;
console.log = (...args) => console.error(...args); // tfjs and the library log while they load
const tf = require("@tensorflow/tfjs-core");
const ms = require("@magenta/sketch");

function serveFile(file) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      fs.readFile(file, (err, data) => {
        if (err) { res.writeHead(404); res.end(); return; }
        res.writeHead(200, { "Content-Type": "application/json", "Connection": "close" });
        res.end(data);
      });
    });
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

async function main() {
  const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
  await tf.ready();
  const srv = await serveFile(request.model);
  let model;
  try {
    model = new ms.SketchRNN(`http://127.0.0.1:${srv.address().port}/${path.basename(request.model)}`);
    await model.initialize();
  } finally {
    srv.close();
  }
  model.setPixelFactor(request.pixel_factor);
  const N = model.NMIXTURE;
  const list = (a, n) => Array.from(n === undefined ? a : a.slice(0, n));
  const out = {
    library: { "@magenta/sketch": require("@magenta/sketch/package.json").version, "@tensorflow/tfjs-core": tf.version_core,
               backend: tf.getBackend() },
    info: model.info, scale_factor: model.scaleFactor, num_units: model.numUnits, nmixture: N, drawings: [],
  };
  for (const rows of request.drawings) {
    let state = model.zeroState();
    const steps = [];
    for (const x of [model.zeroInput(), ...rows]) {
      state = model.update(x, state);
      const pdf = model.getPDF(state, 1.0);
      // the library's pdf.sigmaY is result.slice(4N, 15N): sigmaY, corr and pen; its first N are sigmaY
      steps.push({ pdf: [list(pdf.pi), list(pdf.muX), list(pdf.muY), list(pdf.sigmaX), list(pdf.sigmaY, N),
                         list(pdf.corr), list(pdf.pen)],
                   h: list(state.h), c: list(state.c) });
    }
    out.drawings.push(steps);
  }
  model.dispose();
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main().then(() => { console.log = log; }).catch((e) => { console.error(e); process.exit(1); });
