"""The web page (src/sketchrnn/web/static) in a real browser: Playwright for Python driving Debian's
headless Chromium against `sketchrnn.web.create_app` served by uvicorn on a free loopback port.

Models: the bundled official sheep (unconditional) and a small conditional model trained here for
20 steps on real sheep (the Morph tab). The tests draw with the mouse, read the drawn <path>s and
count the ink in full-page screenshots of the three tabs.

`SKETCHRNN_SCREENSHOTS=1` keeps the screenshots as docs/web_finish.png, web_dream.png and
web_morph.png (the README's; otherwise they go to a temporary folder, so that a test run leaves the
checkout as it was), and `SKETCHRNN_WEB_VAE=MODEL` serves that conditional model instead of the one
trained here (the README's Morph picture: a tiny run of 2000 steps on aaron_sheep).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import GOLDEN_TF, ROOT
from sketchrnn import HParams

CHROMIUM = Path("/usr/bin/chromium")
SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
DOCS = ROOT / "docs"
ACCENT = np.array([0xD6, 0x27, 0x28])
TIMEOUT = 60_000  # ms: the machine is shared, the first request compiles nothing but may wait

pytestmark = pytest.mark.usefixtures("one_thread")


def _chromium() -> str:
    """Debian's Chromium, which Playwright drives by path; missing is a failure, never a skip."""
    path = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    if path is None:
        pytest.fail("the browser tests need Chromium at /usr/bin/chromium: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def executable():
    return _chromium()


@pytest.fixture(scope="module")
def server(executable, tmp_path_factory):
    """The app on 127.0.0.1:<free port> in a thread; it stops when the module's tests are done."""
    import uvicorn

    from sketchrnn.train import train
    from sketchrnn.web import create_app

    run = os.environ.get("SKETCHRNN_WEB_VAE")
    if not run:
        run = tmp_path_factory.mktemp("web_browser") / "cond"
        train(run, HParams.preset("tiny"), data=[SUBSET], steps=20, seed=0, progress=False)
    app = create_app(["sheep", str(run)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser(executable):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable,
                                    args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(TIMEOUT)
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='true']")
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


# ------------------------------------------------------------------------------------ helpers

def draw(page, selector: str, points: list[tuple[float, float]]) -> None:
    """A stroke with the mouse through `points` (relative to the element's top-left corner)."""
    box = page.locator(selector).bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        page.mouse.move(x0 + xb, y0 + yb, steps=4)
    page.mouse.up()


def body_back(x: float, y: float, size: float) -> list[tuple[float, float]]:
    """A sheep's back: a woolly arc of bumps from left to right."""
    t = np.linspace(0.0, np.pi, 28)
    return [(x + size * (1 - np.cos(a)) / 2, y - size * 0.35 * np.sin(a) + 6 * np.sin(6 * a)) for a in t]


def cloud(cx: float, cy: float, rx: float, ry: float) -> list[tuple[float, float]]:
    """A sheep's woolly body: a closed ellipse with seven bumps."""
    t = np.linspace(0.0, 2 * np.pi, 43)
    r = 1 + 0.12 * np.abs(np.sin(3.5 * t))
    return [(cx + rx * r[i] * np.cos(a), cy + ry * r[i] * np.sin(a)) for i, a in enumerate(t)]


def wait_done(page, selector: str, run_above: int = 0) -> None:
    """Until the board's newest run (number above `run_above`) has all its sketches."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "([sel, above]) => { const el = document.querySelector(sel);"
            " return el && Number(el.dataset.run) > above && el.dataset.state !== 'drawing'; }",
            arg=[selector, run_above])
    except PlaywrightTimeout:
        pytest.fail(f"{selector} still drawing; the page says: {page.inner_text('#status')}")
    state = page.get_attribute(selector, "data-state")
    assert state == "done", f"{selector}: {state}; the page says: {page.inner_text('#status')}"


def run_of(page, selector: str) -> int:
    return int(page.get_attribute(selector, "data-run"))


def set_range(page, selector: str, value: float) -> None:
    page.fill(selector, str(value))
    page.dispatch_event(selector, "change")


def ink(png: bytes) -> tuple[int, int]:
    """(accent-red pixels, dark pixels) of a screenshot: the ink that is not background."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red = (np.abs(rgb - ACCENT).sum(axis=2) < 90).sum()
    dark = (rgb.max(axis=2) < 90).sum()
    return int(red), int(dark)


def cell_paths(page, board: str) -> list[dict]:
    """Per cell of a board: its state and the `d` of its paths by class."""
    return page.eval_on_selector_all(
        f"{board} svg.cell",
        "cells => cells.map(c => ({state: c.dataset.state,"
        " given: [...c.querySelectorAll('path.given')].map(p => p.getAttribute('d')),"
        " continuation: [...c.querySelectorAll('path.continuation')].map(p => p.getAttribute('d')),"
        " sketch: [...c.querySelectorAll('path.sketch')].map(p => p.getAttribute('d'))}))")


def models(page) -> tuple[dict, dict]:
    """The served models: (the official sheep, the conditional one)."""
    sheep, cond = page.evaluate("fetch('/api/models').then(r => r.json())")["models"]
    assert sheep["id"] == "sheep" and not sheep["conditional"] and cond["conditional"]
    return sheep, cond


def keep(page, name: str, tmp_path: Path) -> bytes:
    """A full-page screenshot from the top, into docs/ with SKETCHRNN_SCREENSHOTS=1."""
    page.evaluate("window.scrollTo(0, 0)")
    png = page.screenshot(full_page=True)
    folder = DOCS if os.environ.get("SKETCHRNN_SCREENSHOTS") == "1" else tmp_path
    (folder / name).write_bytes(png)
    return png


# ------------------------------------------------------------------------------------ tests

def test_finish_my_drawing(page, tmp_path):
    sheep, cond = models(page)
    assert page.locator("#model option").all_inner_texts() == ["sheep", f"{cond['name']} (VAE)"]
    page.fill("#seed", "1")

    with page.expect_request("**/api/complete/stream") as request:
        draw(page, "#pad", body_back(60, 200, 260))  # pen-up asks for endings
    body = json.loads(request.value.post_data)
    assert body["model"] == "sheep" and body["n"] == 9 and body["temperature"] == 0.5 and body["seed"] == 1
    rows = np.asarray(body["strokes"])
    assert rows.shape[1] == 3 and 3 <= len(rows) < 28  # simplified (RDP, 2 px) from ~110 mouse points
    assert rows[-1, 2] == 1 and (rows[:-1, 2] == 0).all()
    # data units: scale_factor / 20 per pixel, so the arc's 260 px span is 260 * factor data units
    factor = sheep["scale_factor"] / 20
    assert abs(rows[:, 0].sum() / factor - 260) < 3

    wait_done(page, "#endings")
    cells = cell_paths(page, "#endings")
    assert len(cells) == 9 and all(c["state"] == "done" for c in cells)
    for c in cells:  # the drawing (black) and an ending (red) in every cell
        assert len(c["given"]) == 1 and c["given"][0].startswith("M")
        assert c["continuation"] and all(d.startswith("M") for d in c["continuation"])
    assert len({tuple(c["continuation"]) for c in cells}) > 1  # nine different endings
    assert page.get_attribute("#pad", "data-strokes") == "1"
    red, dark = ink(page.locator("#endings").screenshot())
    assert red > 2000 and dark > 1000, (red, dark)
    red, dark = ink(keep(page, "web_finish.png", tmp_path))
    assert red > 2000 and dark > 1000, (red, dark)

    # the temperature and the number of endings: a new request with them, and as many cells
    before = run_of(page, "#endings")
    with page.expect_request("**/api/complete/stream") as request:
        set_range(page, "#temperature", 0.9)
    assert json.loads(request.value.post_data)["temperature"] == 0.9
    assert page.inner_text("#temperature-value") == "0.90"
    wait_done(page, "#endings", before)
    before = run_of(page, "#endings")
    page.select_option("#alternatives", "4")
    wait_done(page, "#endings", before)
    assert len(cell_paths(page, "#endings")) == 4

    # another model answers for the same drawing; then back to the sheep
    for model in (cond["id"], "sheep"):
        before = run_of(page, "#endings")
        with page.expect_request("**/api/complete/stream") as request:
            page.select_option("#model", model)
        assert json.loads(request.value.post_data)["model"] == model
        wait_done(page, "#endings", before)
        assert all(c["continuation"] for c in cell_paths(page, "#endings"))

    # keep drawing from an ending: its strokes join the drawing (red on the pad), then draw on
    adopted = cell_paths(page, "#endings")[2]["continuation"]
    page.click("#endings svg.cell[data-index='2']")
    assert page.locator("#pad path.continuation").count() == len(adopted)
    assert page.locator("#endings svg.cell").count() == 0
    before = run_of(page, "#endings")
    with page.expect_request("**/api/complete/stream") as request:
        draw(page, "#pad", [(80, 300), (90, 340), (95, 380)])  # a leg
    grown = json.loads(request.value.post_data)["strokes"]
    assert len(grown) > len(rows) + 2
    wait_done(page, "#endings", before)
    cells = cell_paths(page, "#endings")
    assert len(cells) == 4 and all(len(c["given"]) == 2 + len(adopted) and c["continuation"] for c in cells)

    # download the drawing as SVG and PNG
    with page.expect_download() as dl:
        page.click("#download-svg")
    svg = Path(dl.value.path()).read_text()
    assert dl.value.suggested_filename == "sketch.svg" and svg.count("<path") == 2 + len(adopted)
    with page.expect_download() as dl:
        page.click("#download-png")
    png = Path(dl.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and ink(png)[1] > 200

    # undo takes the leg back
    before = run_of(page, "#endings")
    page.click("#undo")
    assert page.get_attribute("#pad", "data-strokes") == str(1 + len(adopted))
    wait_done(page, "#endings", before)
    # another model answers for the drawing kept so far (or says it has no room left: next test)
    before = run_of(page, "#endings")
    page.select_option("#model", cond["id"])
    page.wait_for_function("above => { const el = document.querySelector('#endings');"
                           " return Number(el.dataset.run) > above && el.dataset.state !== 'drawing'; }", arg=before)
    assert page.get_attribute("#endings", "data-state") in ("done", "error"), page.inner_text("#status")
    page.click("#clear")
    assert page.get_attribute("#pad", "data-strokes") == "0"


def test_the_pad_keeps_every_line_in_sight_and_says_when_the_model_is_full(page):
    sheep, cond = models(page)
    pad = page.locator("#pad").bounding_box()
    assert page.get_attribute("#pad", "viewBox") is None  # one unit per CSS pixel while all fits
    # a stroke that leaves the pad on the right (the pointer is captured): the view zooms out to it
    with page.expect_request("**/api/complete/stream"):
        draw(page, "#pad", [(100, 200), (pad["width"] - 40, 220), (pad["width"] + 160, 240)])
    x, y, w, h = map(float, page.get_attribute("#pad", "viewBox").split())
    assert x <= 0 and y <= 0 and x + w >= pad["width"] + 160 and y + h >= pad["height"] and abs(w - h) < 1
    wait_done(page, "#endings")
    page.click("#undo")  # the view comes back with the stroke gone; no endings of the old drawing stay
    assert page.get_attribute("#pad", "viewBox") is None
    assert page.locator("#endings svg.cell").count() == 0
    assert page.inner_text("#status") == "the pad is empty: draw something"

    # a drawing as long as the model's sketches: refused before asking, in words, with no cells
    page.select_option("#model", cond["id"])
    n = cond["max_seq_len"] + 10
    step = min(4.0, 380 / n)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/complete" in r.url else None)
    draw(page, "#pad", [(20 + i * step, 150 + 30 * (i % 2)) for i in range(n)])  # a zigzag: every corner stays
    page.wait_for_selector("#endings[data-state='error']", state="attached")  # empty: no size to be visible
    status = page.inner_text("#status")
    assert f"draws sketches of at most {cond['max_seq_len']}: there is no room left for an ending" in status, status
    assert page.locator("#endings svg.cell").count() == 0 and not requests
    # each tab keeps its own status line
    page.click("#tab-dream")
    assert "no room left" not in page.inner_text("#status")
    page.click("#tab-finish")
    assert page.inner_text("#status") == status


def test_dream(page, tmp_path):
    page.click("#tab-dream")
    assert page.is_visible("#panel-dream") and not page.is_visible("#panel-finish")
    page.fill("#dream-seed", "3")
    page.click("#dream-go")
    wait_done(page, "#dreams")
    wait_done(page, "#sweep")
    cells = cell_paths(page, "#dreams")
    assert len(cells) == 9 and all(c["sketch"] for c in cells)
    sweep = cell_paths(page, "#sweep")
    assert len(sweep) == 6 and all(c["sketch"] for c in sweep)
    assert page.locator("#sweep figcaption").all_inner_texts()[0] == "τ 0.1"
    red, dark = ink(page.locator("#panel-dream .results").screenshot())
    assert dark > 3000, dark
    assert ink(keep(page, "web_dream.png", tmp_path))[1] > 3000


def test_morph_for_a_conditional_model(page, tmp_path):
    sheep, cond = models(page)
    assert page.is_disabled("#tab-morph")  # the sheep model has no encoder
    page.select_option("#model", cond["id"])
    assert page.is_enabled("#tab-morph")
    page.click("#tab-morph")
    assert page.is_visible("#panel-morph")
    page.fill("#morph-seed", "4")
    draw(page, "#pad-a", cloud(100, 90, 60, 38))  # A: a body on two legs
    draw(page, "#pad-a", [(75, 125), (72, 170)])
    draw(page, "#pad-a", [(125, 125), (128, 170)])
    page.click("button.pick[data-pad='b'][data-from='dream']")  # B: a sketch the model dreams
    page.wait_for_function("document.querySelector('#pad-b').dataset.strokes > 0")
    with page.expect_request("**/api/interpolate") as request:
        page.click("#morph-go")
    body = json.loads(request.value.post_data)
    assert body["model"] == cond["id"] and body["steps"] == 10 and len(body["a"]) >= 4 and len(body["b"]) >= 1
    wait_done(page, "#morph-row")
    row = cell_paths(page, "#morph-row")
    assert len(row) == 10 and all(c["sketch"] for c in row)
    page.click("#variations-go")
    wait_done(page, "#variations")
    grid = cell_paths(page, "#variations")
    assert len(grid) == 9 and all(c["sketch"] for c in grid)
    red, dark = ink(page.locator("#panel-morph .results").screenshot())
    assert dark > 2000, dark
    assert ink(keep(page, "web_morph.png", tmp_path))[1] > 2000
    # a new A: the row and the variations were of the old one, and go
    page.click("button.pick[data-pad='a'][data-from='clear']")
    assert page.locator("#morph-row svg.cell").count() == 0 and page.locator("#variations svg.cell").count() == 0

    # an unconditional model turns the tab off again
    page.select_option("#model", "sheep")
    assert page.is_disabled("#tab-morph") and page.is_visible("#panel-finish")
