"""The web app's JSON API (sketchrnn.web.create_app), driven in-process with FastAPI's test client.

Real models: the bundled official sheep (unconditional) and a small conditional model trained
here for 20 steps on real sheep.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

import sketchrnn
from sketchrnn import generate
from conftest import GOLDEN_TF
from sketchrnn import HParams
from sketchrnn.train import train
from sketchrnn.web import Limits, create_app

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
START = [[10.0, 5.0, 0], [20.0, 3.0, 0], [5.0, -5.0, 1]]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "cond"
    train(out, HParams.preset("tiny"), data=[SUBSET], steps=20, seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def client(run):
    app = create_app(["sheep", str(run)])
    with TestClient(app) as c:
        yield c


def events(response) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]


def test_models_are_listed_by_id(client):
    models = client.get("/api/models").json()["models"]
    assert [m["id"] for m in models] == ["sheep", "cond"]
    sheep, cond = models
    assert sheep == {"id": "sheep", "name": "sheep", "conditional": False, "cell": "lstm", "num_mixture": 20,
                     "max_seq_len": 156, "scale_factor": pytest.approx(63.0983), "z_size": None}
    assert cond["conditional"] is True and cond["z_size"] == 16


def test_models_of_the_same_name_are_told_apart(tmp_path):
    from sketchrnn import zoo

    copy = tmp_path / "mine" / "sheep.gen.json"
    copy.parent.mkdir()
    copy.write_bytes(zoo.bundled_model("sheep", "gen", "large_models").read_bytes())
    with TestClient(create_app(["sheep", str(copy)])) as c:
        models = c.get("/api/models").json()["models"]
    assert [(m["id"], m["name"]) for m in models] == [("sheep", "sheep"), ("sheep-2", "sheep (mine)")]


def test_complete_and_sample_equal_the_library_and_repeat_with_a_seed(client):
    model = sketchrnn.load("sheep")
    got = client.post("/api/complete", json={"model": "sheep", "strokes": START, "n": 3, "seed": 2}).json()
    want = model.complete(START, n=3, temperature=0.5, seed=2)
    assert len(got["completions"]) == 3
    for a, b in zip(got["completions"], want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-4)
    again = client.post("/api/complete", json={"model": "sheep", "strokes": START, "n": 3, "seed": 2}).json()
    assert again == got
    sampled = client.post("/api/sample", json={"model": "sheep", "n": 4, "temperature": 0.7, "seed": 5}).json()
    for a, b in zip(sampled["sketches"], model.sample(4, temperature=0.7, seed=5)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-4)


def test_streams_send_each_step_then_the_result(client):
    with client.stream("POST", "/api/complete/stream", json={"model": "sheep", "strokes": START, "n": 2,
                                                             "seed": 2}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = events(response)
    *steps, last = frames
    assert last["done"] is True and len(last["completions"]) == 2
    assert [f["step"] for f in steps] == list(range(len(steps)))
    for i, sketch in enumerate(last["completions"]):  # the streamed points are the result's points
        streamed = [p[1:] for f in steps for p in f["points"] if p[0] == i]
        assert len(streamed) == len(sketch)
        np.testing.assert_allclose(np.asarray(streamed)[:, :2], np.asarray(sketch)[:, :2])
    with client.stream("POST", "/api/sample/stream", json={"model": "sheep", "n": 2, "seed": 1}) as response:
        frames = events(response)
    assert frames[-1]["done"] and len(frames[-1]["sketches"]) == 2


def test_conditional_endpoints(client, run):
    sheep = sketchrnn.data.load_npz(SUBSET)["test"]
    a, b = (np.asarray(sheep[i], dtype=float).tolist() for i in (0, 1))
    row = client.post("/api/interpolate", json={"model": "cond", "a": a, "b": b, "steps": 5, "seed": 0}).json()
    assert len(row["sketches"]) == 5
    model = sketchrnn.load(run)
    want = model.interpolate(np.asarray(a), np.asarray(b), steps=5, seed=0)
    for got, expected in zip(row["sketches"], want):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-3)
    nine = client.post("/api/variations", json={"model": "cond", "strokes": a, "n": 9, "seed": 0}).json()
    assert len(nine["sketches"]) == 9
    encoded = client.post("/api/complete", json={"model": "cond", "strokes": a[:10], "n": 2, "z": "encode",
                                                 "seed": 0}).json()
    assert len(encoded["completions"]) == 2
    refused = client.post("/api/interpolate", json={"model": "sheep", "a": a, "b": b})
    assert refused.status_code == 422 and "unconditional" in refused.text


@pytest.mark.parametrize("body, field, message", [
    ({"model": "sheep", "strokes": [[1, 2]]}, "strokes", "row 0 has 2 values"),
    ({"model": "sheep", "strokes": [[1e9, 2, 0]]}, "strokes", "larger than"),
    ({"model": "sheep", "strokes": [[1, 2, 0]] * 200}, "strokes", "200 points, but this model draws sketches of "
     "at most 156 (its max_seq_len), and an ending needs room for one more: give at most 155"),
    ({"model": "sheep", "strokes": [10, 5, 0, 20, 3, 1]}, "strokes",  # one message, not one per number
     "expected a list of [dx, dy, p] rows, but item 0 is 10, not a row"),
    ({"model": "sheep", "strokes": [[1, 2, 3]]}, "strokes", "pen value"),
    ({"model": "sheep", "strokes": START, "temperature": 2.5}, "temperature", "less than or equal to 2"),
    ({"model": "sheep", "strokes": START, "temperature": -1}, "temperature", "greater than or equal to 0"),
    ({"model": "sheep", "strokes": START, "n": 500}, "n", "less than or equal to 64"),
    ({"model": "elsewhere", "strokes": START}, "model", "unknown model id"),
    ({"model": "sheep"}, "strokes", "Field required"),
    ({"model": "sheep", "strokes": START, "z": "encode"}, "z", "unconditional"),
])
def test_bad_input_is_a_422_naming_the_field(client, body, field, message):
    response = client.post("/api/complete", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["loc"][-1] == field and message in d["msg"] for d in detail), detail


def test_non_finite_malformed_and_oversized_bodies(client):
    nan = client.post("/api/complete", content=b'{"model": "sheep", "strokes": [[NaN, 1, 0]]}',
                      headers={"content-type": "application/json"})
    assert nan.status_code == 422 and "not finite" in nan.text
    broken = client.post("/api/complete", content=b'{"model": "sheep", "strokes": [[1, 2',
                         headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "json" in broken.text.lower()
    huge = client.post("/api/complete", content=b" " * (2 << 20), headers={"content-type": "application/json"})
    assert huge.status_code == 422 and "the limit is 1048576" in huge.text

    def chunks():  # no Content-Length: the bytes are counted as they arrive
        for _ in range(30):
            yield b" " * 100_000
    chunked = client.post("/api/complete", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 422 and "the limit is 1048576" in chunked.text, chunked.text
    for content, why in ((b"[" * 100_000, "nested too deeply"), (b'{"model": "\xff"}', "not UTF-8")):
        unreadable = client.post("/api/sample", content=content, headers={"content-type": "application/json"})
        assert unreadable.status_code == 422 and why in unreadable.json()["detail"][0]["msg"], unreadable.text
    for kind in ("text/plain", "text/json"):  # FastAPI reads application/json and application/*+json only
        plain = client.post("/api/sample", content=b'{"model": "sheep"}', headers={"content-type": kind})
        assert plain.status_code == 422 and f"got Content-Type {kind}" in plain.text, plain.text


@pytest.mark.parametrize("body, loc, message", [
    ({"model": "sheep", "n": 1, "temprature": 1.9}, ["body", "temprature"], "Extra inputs are not permitted"),
    ({"model": "sheep", "strokes": [[1, 2, True]]}, ["body", "strokes", 0, 2], "valid number"),
    ({"model": "sheep", "strokes": [["1", 2, 0]]}, ["body", "strokes", 0, 0], "valid number"),
    ({"model": "sheep", "n": "9"}, ["body", "n"], "valid integer"),
    ({"model": "sheep", "strokes": [], "z": "encode"}, ["body", "z"], "unconditional"),
])
def test_misspelt_fields_and_wrong_types_are_refused_not_converted(client, body, loc, message):
    url = "/api/sample" if "strokes" not in body else "/api/complete"
    detail = client.post(url, json=body).json()["detail"]
    assert isinstance(detail, list) and any(d["loc"] == loc and message in d["msg"] for d in detail), detail


def test_the_documentation_pages_work_offline(client):
    """/docs and /redoc load their scripts from the app itself, never from a CDN."""
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and not any("//" in url for url in sources), sources  # no other host
        for url in sources:
            assert client.get(url).status_code == 200, url
    flat = client.post("/api/interpolate", json={"model": "cond", "a": [1, 2, 0], "b": [[1, 2, 0]]}).json()["detail"]
    assert len(flat) == 1 and flat[0]["loc"] == ["body", "a"] and "not a row" in flat[0]["msg"], flat


def test_the_openapi_page_gives_the_apps_limits(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["CompleteBody"]["properties"]["n"]["maximum"] == 64
    assert schemas["InterpolateBody"]["properties"]["steps"]["maximum"] == 10
    nan = client.post("/api/sample", content=b'{"model": "sheep", "temperature": NaN}',
                      headers={"content-type": "application/json"})
    assert nan.json()["detail"][0]["msg"] == "Input should be a finite number"


def test_a_full_queue_answers_503_with_retry_after():
    app = create_app(["sheep"], limits=Limits(max_jobs=1), window=1.0)  # the first request waits 1 s to gather
    with TestClient(app) as client:
        first: dict = {}
        thread = threading.Thread(target=lambda: first.update(r=client.post(
            "/api/sample", json={"model": "sheep", "n": 2, "seed": 0})))
        thread.start()
        time.sleep(0.3)
        second = client.post("/api/sample", json={"model": "sheep", "n": 2, "seed": 0})
        thread.join()
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    assert first["r"].status_code == 200


def test_every_model_runs_on_one_compute_thread(client, monkeypatch):
    """One thread does the model work of every model served (a second OpenMP team would make every
    parallel region sleep and wake), encoding included."""
    served = client.app.state.served
    assert served["sheep"].worker.compute is served["cond"].worker.compute
    encode, threads = generate.encode, []
    monkeypatch.setattr(generate, "encode", lambda *a, **k: threads.append(threading.current_thread()) or encode(*a, **k))
    r = client.post("/api/variations", json={"model": "cond", "strokes": START, "n": 2, "seed": 1})
    assert r.status_code == 200 and len(r.json()["sketches"]) == 2
    assert threads == [served["cond"].worker.compute.thread]


def test_concurrent_requests_share_one_batch():
    app = create_app(["sheep"], window=0.2)
    worker = app.state.served["sheep"].worker
    with TestClient(app) as client:
        results: list = []

        def ask(seed: int) -> None:
            results.append(client.post("/api/complete", json={"model": "sheep", "strokes": START, "n": 9,
                                                              "seed": seed, "temperature": 0.5}).json())

        threads = [threading.Thread(target=ask, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    longest = max(len(c) for r in results for c in r["completions"])
    assert len(results) == 8 and all(len(r["completions"]) == 9 for r in results)
    # one shared decoder step per step of the longest sketch (plus stragglers), not one per request
    assert worker.steps_run < 2 * longest, (worker.steps_run, longest)


def test_a_client_that_disconnects_frees_its_rows():
    app = create_app(["sheep"])
    worker = app.state.served["sheep"].worker
    with TestClient(app) as client:
        with client.stream("POST", "/api/sample/stream", json={"model": "sheep", "n": 64, "seed": 0,
                                                               "temperature": 1.0}) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # one frame, then hang up
        deadline = time.monotonic() + 5
        while worker.jobs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.jobs == []
        assert worker.steps_run < 150  # it stopped well before the sketches' end
