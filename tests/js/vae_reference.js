// Runs the original sketch-rnn library (sketch_rnn.js, with its bundled numjs) on a .vae.json file
// and writes what tests/test_vae_json.py compares with our model.
//
//   node vae_reference.js LIB_DIR REQUEST.json OUT.json
//
// REQUEST: {"model": PATH, "pixel_factor": 1, "z": [...], "drawings": [[[dx, dy, p1, p2, p3], ...], ...]}
// (rows in data units). For each drawing, OUT holds encode_to_mu_sigma's mu and sigma, and the
// per-step pdfs of the decoder driven from the fixed z: get_init_state_from_latent_vector(z), then
// update(x, state, z) and get_pdf(state) for x = the start token (0, 0, 1, 0, 0) and every row.
// This file is glue only: every number in OUT comes from the library.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const [libDir, requestPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node vae_reference.js LIB_DIR REQUEST.json OUT.json");
  process.exit(2);
}
if (typeof atob === "undefined") { // a global from Node 16 on; older distributions' nodejs lacks it
  global.atob = (s) => Buffer.from(s, "base64").toString("binary");
}
vm.runInThisContext(fs.readFileSync(path.join(libDir, "numjs.js"), "utf8"), { filename: "numjs.js" });
vm.runInThisContext(fs.readFileSync(path.join(libDir, "sketch_rnn.js"), "utf8"), { filename: "sketch_rnn.js" });

const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
const log = console.log;
console.log = (...args) => console.error(...args); // the library logs while it loads a model
const model = new SketchRNN(JSON.parse(fs.readFileSync(request.model, "utf8")));
console.log = log;
model.set_pixel_factor(request.pixel_factor);

const list = (a) => a.tolist();
const out = { scale_factor: model.scale_factor, version: model.info.version, drawings: [] };
const z = request.z;
const start = [0, 0, 1, 0, 0];
for (const rows of request.drawings) {
  const [mu, sigma] = model.encode_to_mu_sigma(rows);
  let state = model.get_init_state_from_latent_vector(z);
  const init = { h: list(state[0]), c: list(state[1]) };
  const pdfs = [];
  for (const x of [start, ...rows]) {
    state = model.update(x, state, z);
    pdfs.push(model.get_pdf(state).map(list)); // [pi, mu1, mu2, sigma1, sigma2, corr, pen]
  }
  out.drawings.push({ mu: list(mu), sigma: list(sigma), init, pdfs });
}
fs.writeFileSync(outPath, JSON.stringify(out));
