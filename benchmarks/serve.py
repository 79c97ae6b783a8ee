"""`sketchrnn serve` under load: N concurrent clients, each asking for 9 completions of a real drawing.

The official sheep model (LSTM 512, M 20), τ = 0.5, the first 30 points of a real Quick, Draw!
sheep as the partial sketch. For N = 1, 4, 16, 64 concurrent clients: p50/p95 latency and
sketches per second, against the same requests served one at a time in the same run; the time
to the first streamed points with one client; and the server's peak memory after 10 and after
`--requests` requests. The server is `sketchrnn serve` in its own process on 127.0.0.1 (an ephemeral port).

At N = 16 two bounds for comparison, timed in this process while the server is idle: the library
drawing all 144 completions in one batch (what the 16 requests would cost as one request, with no
server around them) and the decoder's recurrent matrix products alone for the completions served.

    python benchmarks/serve.py
    python benchmarks/serve.py --clients 1,16 --requests 300
    python benchmarks/serve.py --device cuda
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from sketchrnn.data import read_ndjson
from sketchrnn.data.convert import drawing_to_stroke3

SHEEP_NDJSON = Path(__file__).resolve().parents[2] / "shared" / "ndjson" / "simplified" / "sheep.ndjson"


def start_server(model: str, device: str = "cpu") -> tuple[subprocess.Popen, str]:
    """`sketchrnn serve MODEL` in a process of its own (as for real users, apart from the clients)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sketchrnn", "serve", model, "--port", str(port), "--device", device],
                            stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/models", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


class Client:
    """One keep-alive HTTP connection (the standard library's: the clients share this machine's two
    cores with the server, so they should cost it as little as a client elsewhere would)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)

    def complete(self, body: dict) -> tuple[float, list[int]]:
        """Seconds for one /api/complete request, its answer read and parsed, and its completions' lengths."""
        t0 = time.perf_counter()
        self.conn.request("POST", "/api/complete", json.dumps(body), {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {data[:200]!r}")
        completions = json.loads(data)["completions"]
        return time.perf_counter() - t0, [len(c) for c in completions]

    def close(self) -> None:
        self.conn.close()


def concurrent(url: str, body: dict, clients: int, rounds: int) -> tuple[list[float], float, list[list[int]]]:
    """`clients` threads, each sending `rounds` requests back to back: latencies, wall time and the
    lengths of each round's completions (all clients')."""
    latencies: list[float] = []
    lengths: list[list[int]] = [[] for _ in range(rounds)]
    lock = threading.Lock()
    connections = [Client(url) for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client_loop(k: int) -> None:
        start.wait()
        for r in range(rounds):
            t, drawn = connections[k].complete({**body, "seed": k * 1000 + r})
            with lock:
                latencies.append(t)
                lengths[r] += drawn

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in connections:
        c.close()
    if len(latencies) != clients * rounds:
        raise RuntimeError("a client failed (its error is printed above)")
    return latencies, wall, lengths


def first_points(url: str, body: dict, repeats: int = 5) -> float:
    """Median seconds from sending a streamed request to its first frame of points."""
    times = []
    with httpx.Client() as client:
        for r in range(repeats):
            t0 = time.perf_counter()
            with client.stream("POST", f"{url}/api/complete/stream", json={**body, "seed": r}, timeout=60) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data: ") and "points" in line:
                        times.append(time.perf_counter() - t0)
                        break
    return statistics.median(times)


def matmul_floor(model, lengths: list[list[int]], prefix: int) -> float:
    """Seconds that the decoder's recurrent matrix products alone take for rounds of completions of
    these lengths, served together: at each step one [rows alive, n] × [n, 4n] product (timed here,
    with the server's thread count, while the server is idle), from the priming of `prefix` points
    (one row per request) to the last point. A lower bound for serving those requests at once."""
    import torch

    w = model.dec_cell.W_hh.detach()
    counts = sorted({r for round_ in lengths for r in range(1, len(round_) + 1)} | {len(lengths[0]) // 9})
    cost = {}
    with torch.inference_mode():
        for rows in counts:
            h, b = torch.randn(rows, w.shape[0], device=w.device), torch.randn(rows, w.shape[1], device=w.device)
            for _ in range(5):
                torch.addmm(b, h, w)
            sync(w.device)
            t0 = time.perf_counter()
            for _ in range(20):
                torch.addmm(b, h, w)
            sync(w.device)
            cost[rows] = (time.perf_counter() - t0) / 20
    total = 0.0
    for round_ in lengths:
        total += prefix * cost[len(round_) // 9]
        ends = np.asarray(round_)
        total += sum(cost[int((ends > t).sum())] for t in range(int(ends.max())))
    return total


def one_batch(model, strokes: list, n: int, temperature: float, repeats: int = 3) -> float:
    """Median seconds for the library to draw `n` completions of `strokes` in one batch, in this
    process with the server's thread count while the server is idle: what serving n / 9 requests
    would cost if they arrived as one request, with no server around them."""
    model.complete(strokes, n=n, temperature=temperature, seed=0)  # warm-up
    times = []
    for seed in range(1, repeats + 1):
        t0 = time.perf_counter()
        model.complete(strokes, n=n, temperature=temperature, seed=seed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sync(device) -> None:
    """Wait for the device's queued work (timings on a GPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mb(pid: int) -> float:
    """The server's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sheep")
    parser.add_argument("--device", default="cpu", help="the server's --device (cpu, cuda, auto)")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=2, help="requests per client per measurement")
    parser.add_argument("--requests", type=int, default=1000, help="requests served before the memory check")
    args = parser.parse_args()

    drawing = read_ndjson(SHEEP_NDJSON)[0]["drawing"]
    strokes = (drawing_to_stroke3(drawing)[:30] * [3, 3, 1]).tolist()  # the demos' pixel factor 3
    body = {"model": args.model, "strokes": strokes, "n": 9, "temperature": 0.5}
    server, url = start_server(args.model, args.device)
    try:
        concurrent(url, body, 1, 3)  # warm-up: kernels, allocator
        print(f"{args.model}: 9 completions of a 30-point real sheep per request, τ 0.5")
        print(f"first streamed points, one client: {first_points(url, body) * 1e3:.0f} ms (target <= 100 ms)")
        for n in [int(c) for c in args.clients.split(",")]:
            # the same requests one at a time (one client, n × rounds requests), then n at once
            serial, serial_wall, _ = concurrent(url, body, 1, n * args.rounds)
            lat, wall, drawn = concurrent(url, body, n, args.rounds)
            q = statistics.quantiles(lat, n=20) if len(lat) > 1 else [lat[0]] * 19
            one = statistics.median(serial)
            print(f"N={n:>3}: p50 {statistics.median(lat) * 1e3:6.0f} ms, p95 {q[18] * 1e3:6.0f} ms, "
                  f"{9 * len(lat) / wall:6.1f} sketches/s; one at a time {9 * len(lat) / serial_wall:6.1f} "
                  f"sketches/s ({serial_wall / wall:.2f}x less); {n} requests at once take "
                  f"{wall / args.rounds / one:.2f}x one request ({one * 1e3:.0f} ms)"
                  + (" (target <= 3x at N=16)" if n == 16 else ""))
            if n == 16:
                import sketchrnn
                from sketchrnn.train.loop import resolve_device

                # torch's own thread count in this fresh process: the count `sketchrnn serve` gives its compute thread
                model = sketchrnn.load(args.model).to(resolve_device(args.device)).eval()
                floor = matmul_floor(model, drawn, len(strokes)) / args.rounds
                batch = one_batch(model, strokes, n * body["n"], body["temperature"])
                print(f"        the library drawing their {n * body['n']} completions in one batch, no server: "
                      f"{batch * 1e3:.0f} ms = {batch / one:.2f}x one request served; the recurrent matrix products "
                      f"alone: {floor * 1e3:.0f} ms = {floor / one:.2f}x")
        concurrent(url, body, 1, 10)
        after_10 = peak_rss_mb(server.pid)
        lat, _, _ = concurrent(url, body, 16, max(1, (args.requests - 10) // 16))
        after_many = peak_rss_mb(server.pid)
        print(f"peak memory: {after_10:.0f} MB after 10 requests, {after_many:.0f} MB after {10 + len(lat)} "
              f"({(after_many / after_10 - 1) * 100:+.1f}%, target within 10%)")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
