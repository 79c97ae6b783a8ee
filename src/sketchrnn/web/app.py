"""The FastAPI app behind `sketchrnn serve`: the page, the JSON API and its streaming form.

Streaming uses server-sent events on the response to a POST: the traffic is one way (points from
the server), each event is a line of JSON a page reads with `fetch`, proxies and curl pass it
as it is, and a closed connection is how a client says it has gone (the job is cancelled at once).
A WebSocket would add a second protocol for no message the client needs to send mid-drawing.
"""

import asyncio
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from .. import generate
from ..model import SketchRNN
from .engine import Busy, Compute, Job, ModelWorker, asyncio_callbacks

STATIC = Path(__file__).with_name("static")
_JSON = TypeAdapter(Any)  # pydantic's encoder: a response of nine sketches in 0.25 ms, json.dumps takes 1.3 ms


def _json(content: Any) -> Response:
    """A JSON response encoded at once (the event loop serves everyone: it should not spend long on one)."""
    return Response(_JSON.dump_json(content), media_type="application/json")


def _frame(content: Any) -> str:
    """One server-sent event."""
    return f"data: {_JSON.dump_json(content).decode()}\n\n"



@dataclass
class Limits:
    """Bounds on what one request may ask and on how much the server holds at once."""

    max_n: int = 64  # alternatives or sketches per request
    max_steps: int = 10  # interpolation steps
    max_jobs: int = 64  # requests waiting or drawing per model (then 503)
    seconds: float = 30.0  # time limit per request
    max_body: int = 1 << 20  # bytes of a request body
    max_offset: float = 1e4  # |dx|, |dy| in data units


class SampleBody(BaseModel):
    # strict: a pen of true or a number in a string is refused, not converted; a misspelt field too
    model_config = ConfigDict(strict=True, extra="forbid")

    model: str
    n: int = Field(9, ge=1)
    temperature: float = Field(0.5, ge=0.0, le=2.0, allow_inf_nan=False)
    seed: Optional[int] = Field(None, ge=0, lt=2**63)


def _rows(value: Any) -> Any:
    """One message for a list that is not of rows (a flat [dx, dy, p, dx, ...] gave one per number)."""
    if isinstance(value, list):
        bad = next((i for i, row in enumerate(value) if not isinstance(row, list)), None)
        if bad is not None:
            try:
                item = json.dumps(value[bad])  # as the client wrote it: null, true, {"a": 1}
            except (TypeError, ValueError):
                item = repr(value[bad])
            raise PydanticCustomError("rows", "expected a list of [dx, dy, p] rows, but item {bad} is {item}, not a row",
                                      {"bad": bad, "item": item if len(item) <= 40 else item[:37] + "..."})
    return value


class CompleteBody(SampleBody):
    strokes: list[list[float]]
    z: Literal["prior", "encode"] = "prior"

    check_rows = field_validator("strokes", mode="before")(_rows)


class VariationsBody(SampleBody):
    strokes: list[list[float]]

    check_rows = field_validator("strokes", mode="before")(_rows)


class InterpolateBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    model: str
    a: list[list[float]]
    b: list[list[float]]
    steps: int = Field(10, ge=2)
    temperature: float = Field(0.1, ge=0.0, le=2.0, allow_inf_nan=False)
    seed: Optional[int] = Field(None, ge=0, lt=2**63)

    check_rows = field_validator("a", "b", mode="before")(_rows)


def _bounded(body: type[BaseModel], name: str, high: int) -> Any:
    """`body` with an upper bound, this app's limit, on its count `name` (so /openapi.json shows it)."""
    field = body.model_fields[name]
    return create_model(body.__name__, __base__=body,
                        **{name: (field.annotation, FieldInfo.merge_field_infos(field, Field(le=high)))})


class BodyLimit:
    """ASGI middleware: a request body over `max_body` bytes is a 422, whether it declares its length
    or arrives in chunks (the bytes are counted as they are read)."""

    def __init__(self, app, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        size = dict(scope.get("headers", [])).get(b"content-length", b"")
        if size.isdigit() and int(size) > self.max_body:
            refusal = JSONResponse(status_code=422, content={"detail": self._detail(f"{int(size)} bytes")})
            return await refusal(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise HTTPException(422, detail=self._detail(f"more than {self.max_body} bytes"))
            return message

        await self.app(scope, counted, send)

    def _detail(self, size: str) -> list[dict]:
        return [{"loc": ["body"], "msg": f"the body has {size}: the limit is {self.max_body}", "type": "value_error"}]


def _is_json(content_type: str) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON (application/json or application/*+json)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _invalid(field: str | None, message: str) -> HTTPException:
    """A 422 in FastAPI's own shape, naming the field (None: the body as a whole)."""
    loc = ["body"] if field is None else ["body", field]
    return HTTPException(422, detail=[{"loc": loc, "msg": message, "type": "value_error"}])


@dataclass
class Served:
    """A model the server offers, under its id."""

    id: str
    name: str
    model: SketchRNN
    worker: ModelWorker

    def describe(self) -> dict[str, Any]:
        hps = self.model.hps
        return {"id": self.id, "name": self.name, "conditional": bool(hps.conditional), "cell": hps.dec_model,
                "num_mixture": hps.num_mixture, "max_seq_len": hps.max_seq_len,
                "scale_factor": float(self.model.scale_factor), "z_size": hps.z_size if hps.conditional else None}


def _spec_name(spec: str) -> str:
    """A model argument's own name: the zoo name, or the file or folder name without .gen.json / .json."""
    name = Path(spec).name
    return name.removesuffix(".json").removesuffix(".gen") if name else str(spec)


def _model_id(spec: str, taken: set[str]) -> str:
    """A short id for a model argument: its name (`_spec_name`) in URL-safe characters, made unique."""
    base = "".join(c if c.isalnum() or c in "._-" else "-" for c in _spec_name(spec)) or "model"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def default_models() -> list[str]:
    """The bundled official model and every official model in the cache."""
    from .. import zoo

    specs = [str(p) for p in (zoo.bundled_model(name, kind, set) for name, kind, set in zoo.BUNDLED)]
    root = zoo.cached_model("sheep").parent.parent  # models/<set>/
    for path in sorted(root.glob("*/*.json")):
        if path.name.endswith((".gen.json", ".vae.json")) and not path.name.endswith(".json.json"):
            specs.append(str(path))
    return specs


def create_app(models: list[str] | None = None, device: str = "cpu", limits: Limits | None = None,
               window: float = 0.005, threads: int | None = None) -> FastAPI:
    """The web app serving `models` (anything `sketchrnn.load` takes, zoo names included; default:
    the bundled official model and the cached ones) on `device`; the model work runs on one thread
    with `threads` torch threads (None: torch's count)."""
    import sketchrnn
    from ..train.loop import resolve_device

    limits = limits or Limits()
    served: dict[str, Served] = {}
    compute = Compute(threads)
    for spec in models if models is not None else default_models():
        model = sketchrnn.load(spec).to(resolve_device(device)).eval()
        ident = _model_id(spec, set(served))
        name = _spec_name(str(spec))
        if name in {s.name for s in served.values()}:  # two models called sheep: the picker says which is which
            name = f"{name} ({Path(str(spec)).parent.name or ident})"  # a folder's name, never a whole local path
        served[ident] = Served(ident, name, model,
                               ModelWorker(model, max_jobs=limits.max_jobs, window=window, compute=compute))
    if not served:
        raise ValueError("no model to serve")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        compute.close()  # the model thread ends with the app

    # /docs and /redoc with their scripts served by the app: the page works offline, as ours does
    app = FastAPIOffline(title="sketchrnn", description="sketch-rnn: finish drawings, dream, morph.", version="1",
                         lifespan=lifespan, favicon_url="/static/favicon.svg")
    app.state.served, app.state.limits = served, limits

    app.add_middleware(BodyLimit, max_body=limits.max_body)
    Complete = _bounded(CompleteBody, "n", limits.max_n)
    Sample = _bounded(SampleBody, "n", limits.max_n)
    Variations = _bounded(VariationsBody, "n", limits.max_n)
    Interpolate = _bounded(InterpolateBody, "steps", limits.max_steps)

    def lookup(ident: str) -> Served:
        if ident not in served:
            raise _invalid("model", f"unknown model id {ident!r}; GET /api/models lists them")
        return served[ident]

    def checked_strokes(field: str, rows: list[list[float]], s: Served, room: int = 1) -> np.ndarray:
        if any(len(r) != 3 for r in rows):
            bad = next(i for i, r in enumerate(rows) if len(r) != 3)
            raise _invalid(field, f"row {bad} has {len(rows[bad])} values: expected [dx, dy, p]")
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(arr).all():
            raise _invalid(field, f"row {int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])} is not finite")
        if len(arr) and np.abs(arr[:, :2]).max() > limits.max_offset:
            raise _invalid(field, f"an offset is larger than {limits.max_offset:g} data units")
        if not np.isin(arr[:, 2], (0, 1)).all():
            raise _invalid(field, "the pen value p must be 0 or 1")
        longest = s.model.hps.max_seq_len
        if len(arr) > longest - room:
            why = (f"and an ending needs room for one more: give at most {longest - room}" if room else "")
            raise _invalid(field, f"{len(arr)} points, but this model draws sketches of at most {longest} (its "
                                  f"max_seq_len){', ' + why if why else ''}")
        return arr

    def submit(s: Served, job: Job) -> None:
        """Queue `job` on its model's batch with the request time limit; 503 when the queue is full."""
        job.deadline = time.monotonic() + limits.seconds
        try:
            s.worker.submit(job)
        except Busy as exc:
            raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from None

    async def on_compute(fn: Callable[[], Any]) -> Any:
        """`fn()` run on the model thread (the event loop goes on meanwhile)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if not done.cancelled():
                done.set_exception(error) if error is not None else done.set_result(result)

        try:
            compute.call(fn, lambda result, error: loop.call_soon_threadsafe(settle, result, error))
        except Busy as exc:
            raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from None
        return await done

    async def run(s: Served, job: Job, request: Request | None = None):
        """Submit `job` and wait for its sketches."""
        loop = asyncio.get_running_loop()
        queue = asyncio_callbacks(job, loop, stream=False)
        submit(s, job)
        try:
            _, sketches, error = await asyncio.wait_for(queue.get(), timeout=limits.seconds + 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            job.cancel()
            raise
        if error is not None:
            if error == "time limit reached":
                raise HTTPException(504, detail=error)
            field = error.split(":", 1)[0]  # the library's messages start with the argument they are about
            raise _invalid(field if field in {f.name for f in fields(job)} else None, error)
        return [sk.tolist() for sk in sketches]

    def stream(s: Served, job: Job, request: Request, key: str) -> StreamingResponse:
        loop = asyncio.get_running_loop()
        queue = asyncio_callbacks(job, loop, stream=True)
        submit(s, job)

        async def events():
            try:
                while True:
                    item = await queue.get()
                    if item[0] == "step":
                        yield _frame({"step": item[1], "points": item[2]})
                    else:
                        _, sketches, error = item
                        if error is not None:
                            yield _frame({"done": True, "error": error})
                        else:
                            yield _frame({"done": True, key: [sk.tolist() for sk in sketches]})
                        return
            finally:
                job.cancel()  # the client went away (or the job ended): its rows leave the batch

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def complete_job(body: Complete) -> tuple[Served, Job]:
        s = lookup(body.model)
        strokes = checked_strokes("strokes", body.strokes, s)
        if body.z == "encode" and not s.model.hps.conditional:
            raise _invalid("z", "this model is unconditional: it has no encoder")
        z = body.z if s.model.hps.conditional else None
        return s, Job("complete", body.n, body.temperature, seed=body.seed, strokes=strokes, z=z)

    def sample_job(body: Sample) -> tuple[Served, Job]:
        s = lookup(body.model)
        return s, Job("sample", body.n, body.temperature, seed=body.seed)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models")
    def list_models() -> dict:
        """The models served, addressed by id."""
        return {"models": [s.describe() for s in served.values()]}

    @app.post("/api/complete")
    async def api_complete(body: Complete, request: Request) -> Response:
        """N continuations of a partial sketch (stroke-3 rows in the model's data units)."""
        s, job = complete_job(body)
        return _json({"completions": await run(s, job, request)})

    @app.post("/api/complete/stream")
    async def api_complete_stream(body: Complete, request: Request) -> StreamingResponse:
        """The same as /api/complete, as server-sent events: each step's new points, then the result."""
        s, job = complete_job(body)
        return stream(s, job, request, "completions")

    @app.post("/api/sample")
    async def api_sample(body: Sample, request: Request) -> Response:
        """N new sketches (prior draws for a conditional model)."""
        s, job = sample_job(body)
        return _json({"sketches": await run(s, job, request)})

    @app.post("/api/sample/stream")
    async def api_sample_stream(body: Sample, request: Request) -> StreamingResponse:
        """The same as /api/sample, as server-sent events."""
        s, job = sample_job(body)
        return stream(s, job, request, "sketches")

    def conditional(s: Served) -> None:
        if not s.model.hps.conditional:
            raise _invalid("model", f"{s.id} is unconditional: it has no latent space")

    @app.post("/api/variations")
    async def api_variations(body: Variations, request: Request) -> Response:
        """N sketches decoded from one drawing's mean z (the demos' auto-encode)."""
        s = lookup(body.model)
        conditional(s)
        strokes = checked_strokes("strokes", body.strokes, s, room=0)
        if not len(strokes):
            raise _invalid("strokes", "empty: there is nothing to encode")
        z = await on_compute(lambda: generate.encode(s.model, [strokes])[0])
        job = Job("sample", body.n, body.temperature, seed=body.seed, z=z)
        return _json({"sketches": await run(s, job, request)})

    @app.post("/api/interpolate")
    async def api_interpolate(body: Interpolate, request: Request) -> Response:
        """Sketches decoded along the slerp path from a's mean z to b's, both ends included."""
        s = lookup(body.model)
        conditional(s)
        pair = []
        for field in ("a", "b"):
            strokes = checked_strokes(field, getattr(body, field), s, room=0)
            if not len(strokes):
                raise _invalid(field, "empty: there is nothing to encode")
            pair.append(strokes)
        ends = (await on_compute(lambda: torch.stack([generate.encode(s.model, [one])[0] for one in pair])))
        ends = ends.double().cpu().numpy()
        zs = np.stack([generate.slerp(ends[0], ends[1], t) for t in np.linspace(0.0, 1.0, body.steps)])
        job = Job("sample", body.steps, body.temperature, seed=body.seed, z=zs)
        return _json({"sketches": await run(s, job, request)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each field; finite numbers only (JSON NaN and Infinity are refused here too)."""
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        kind = request.headers.get("content-type", "")
        if not _is_json(kind) and any(e["loc"] == ["body"] and e["type"] == "model_attributes_type"
                                              for e in errors):  # FastAPI reads JSON bodies only: say so
            errors = [{"loc": ["body"], "msg": "expected a JSON body (Content-Type: application/json), got "
                                               + (f"Content-Type {kind}" if kind else "no Content-Type"),
                       "type": "content_type"}]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(StarletteHTTPException)
    async def unreadable_body(request: Request, exc: StarletteHTTPException) -> Response:
        """A body FastAPI could not parse (not UTF-8, nested too deeply) is a 422 saying why, like malformed JSON."""
        cause = exc.__cause__
        if exc.status_code == 400 and cause is not None:
            why = ("it is nested too deeply" if isinstance(cause, RecursionError) else
                   "it is not UTF-8 text" if isinstance(cause, UnicodeError) else type(cause).__name__)
            return JSONResponse(status_code=422, content={"detail": [{
                "loc": ["body"], "msg": f"the body could not be read as JSON: {why}", "type": "json_invalid"}]})
        return await http_exception_handler(request, exc)

    return app
