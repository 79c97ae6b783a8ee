"""The official pretrained sketch-rnn models (magenta-js files), by name: list, download, resolve.

Google published 114 models of Quick, Draw! classes and blends of several (``catpig``,
``crabrabbitfacepig``): :data:`NAMES`.  Each was trained as a decoder-only model (kind ``gen``,
``NAME.gen.json``) and as a full VAE with an encoder (kind ``vae``, ``NAME.vae.json``), except
``everything`` (gen only), and each is published in two sets, ``large_models`` (the one the
sketch-rnn-js README lists; the default) and the older ``models``:

==============  =================================================  ==========================================
what            where                                              for ``cat``, kind vae, set large_models
==============  =================================================  ==========================================
address         ``{root}/{set}/{name}.{kind}.json``                ``{root}/large_models/cat.vae.json``
cached file     ``{cache}/models/{set}/{name}.{kind}.json``        ``~/.cache/sketchrnn/models/large_models/cat.vae.json``
==============  =================================================  ==========================================

`root` is :data:`MODELS_URL` unless ``$SKETCHRNN_MODELS_URL`` (or a `base_url` argument) replaces it;
`cache` is :func:`sketchrnn.cache.cache_dir`, the data's cache.  Files are fetched with the data's
downloader (:func:`sketchrnn.transfer.fetch`: atomic, resumed after an interruption, size and MD5
checked, a ``.json`` record beside each file) and kept only when they read as a magenta-js model
of their kind (:func:`model_problem`).  One model ships inside the package, ``large_models``'s
``sheep.gen.json`` (:data:`BUNDLED`), and is used from there without any download.

A model argument (``sketchrnn.load``, every command's MODEL) that is not an existing path may be a
zoo name, resolved by :func:`model_path`: ``cat`` (the decoder-only model), ``cat.gen`` or
``cat.vae``, from ``large_models``.  Listing and resolving import no torch; checking a fresh
download does (it reads the file as ``sketchrnn.load`` will).
"""

from __future__ import annotations

import difflib
import os
import sys
import urllib.error
from importlib import resources
from pathlib import Path

from .cache import cache_dir

__all__ = [
    "BUNDLED", "KINDS", "MODELS_URL", "NAMES", "SETS", "ZooError", "bundled_model", "cached_model",
    "download_model", "kinds_of", "model_path", "model_problem", "model_url", "models_root", "parse_name",
]

MODELS_URL = "https://storage.googleapis.com/quickdraw-models/sketchRNN"
"""The root of the official models: the sets are folders under it."""

SETS = ("large_models", "models")
KINDS = ("gen", "vae")

NAMES: tuple[str, ...] = tuple("""
    alarm_clock ambulance angel ant antyoga backpack barn basket bear bee beeflower bicycle bird
    book brain bridge bulldozer bus butterfly cactus calendar castle cat catbus catpig chair couch
    crab crabchair crabrabbitfacepig cruise_ship diving_board dog dogbunny dolphin duck elephant
    elephantpig eye face fan fire_hydrant firetruck flamingo flower floweryoga frog frogsofa garden
    hand hedgeberry hedgehog helicopter kangaroo key lantern lighthouse lion lionsheep lobster map
    mermaid monapassport monkey mosquito octopus owl paintbrush palm_tree parrot passport peas
    penguin pig pigsheep pineapple pool postcard power_outlet rabbit rabbitturtle radio radioface
    rain rhinoceros rifle roller_coaster sandwich scorpion sea_turtle sheep skull snail snowflake
    speedboat spider squirrel steak stove strawberry swan swing_set the_mona_lisa tiger toothbrush
    toothpaste tractor trombone truck whale windmill yoga yogabicycle everything
""".split())
"""The 114 official model names, as the sketch-rnn-js README lists them."""

_GEN_ONLY = frozenset({"everything"})

BUNDLED: dict[tuple[str, str, str], str] = {("sheep", "gen", "large_models"): "sheep.gen.json"}
"""(name, kind, set) → the file shipped in the package's ``models/`` folder."""

_GLANCE = 64  # bytes read at each end of a cached file for a cheap look


class ZooError(ValueError):
    """Not an official model, or one that cannot be fetched (a single line)."""


def kinds_of(name: str) -> tuple[str, ...]:
    """The kinds official model `name` was published in: ``("gen", "vae")``, or ``("gen",)`` for everything."""
    return ("gen",) if name in _GEN_ONLY else KINDS


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, NAMES, n=3)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _check(name: str, kind: str, set: str) -> None:
    """Refuse, in one line, what is not an official model."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    if set not in SETS:
        raise ValueError(f"unknown set {set!r}; one of: {', '.join(SETS)}")
    if name not in NAMES:
        parsed = parse_name(str(name))
        if parsed is not None:
            raise ZooError(f"{name}: give the name and the kind apart (name {parsed[0]!r}, kind {parsed[1]!r})")
        raise ZooError(f"{name}: not an official model name{_suggest(str(name))} (`sketchrnn models list` lists them)")
    if kind not in kinds_of(name):
        raise ZooError(f"{name}: no {kind} model was published, only {name}.{'/'.join(kinds_of(name))}.json")


def parse_name(spec: str) -> tuple[str, str] | None:
    """(name, kind) of a zoo name written ``cat``, ``cat.gen`` or ``cat.vae``; None for anything else.

    Whether that kind was published (``everything.vae`` was not) is left to the functions that take it.
    """
    name, dot, kind = spec.partition(".")
    kind = kind if dot else "gen"
    return (name, kind) if name in NAMES and kind in KINDS else None


def models_root(base_url: str | None = None) -> str:
    """The root used: `base_url`, else ``$SKETCHRNN_MODELS_URL``, else :data:`MODELS_URL`."""
    return (base_url or os.environ.get("SKETCHRNN_MODELS_URL") or MODELS_URL).rstrip("/")


def model_url(name: str, kind: str = "gen", set: str = "large_models", base_url: str | None = None) -> str:
    """The address of official model `name` of `kind` in `set`."""
    _check(name, kind, set)
    return f"{models_root(base_url)}/{set}/{name}.{kind}.json"


def cached_model(name: str, kind: str = "gen", set: str = "large_models",
                 directory: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`download_model` keeps a model (whether or not it is there yet).

    `directory` holds one folder per set; by default ``models/`` in :func:`cache_dir`.
    """
    _check(name, kind, set)
    return Path(directory if directory is not None else cache_dir() / "models") / set / f"{name}.{kind}.json"


def bundled_model(name: str, kind: str = "gen", set: str = "large_models") -> Path | None:
    """The copy of a model shipped inside the package, or None."""
    file = BUNDLED.get((name, kind, set))
    return Path(str(resources.files("sketchrnn") / "models" / file)) if file else None


# ---------------------------------------------------------------------------
# Checking files


def model_problem(path: str | os.PathLike[str], kind: str) -> str | None:
    """Why `path` is not a magenta-js model file of `kind`, or None if it is.

    The file is read as ``sketchrnn.load`` reads it (``interop.magenta_js``: ``read_gen_json`` or
    ``read_vae_json``): JSON ``[info, dims, blobs]``, 5 weights in a gen file and 17 in a vae file,
    each blob as many int16 values as its shape, a numeric scale factor and max_seq_len.  This
    imports torch, so only fresh downloads and `verify` pay for it.
    """
    from .interop.magenta_js import ModelFileError, read_gen_json, read_vae_json

    try:
        (read_gen_json if kind == "gen" else read_vae_json)(path)
    except ModelFileError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def _glance(path: Path) -> str | None:
    """A cheap look at a cached model: a JSON list from its first byte to its last."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_GLANCE).lstrip()
        fh.seek(max(0, size - _GLANCE))
        tail = fh.read().rstrip()
    return None if head.startswith(b"[") and tail.endswith(b"]") else "not a complete JSON list"


# ---------------------------------------------------------------------------
# Downloads


def download_model(
    name: str,
    kind: str = "gen",
    set: str = "large_models",
    directory: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 60,
    progress: bool = False,
    verify: bool = False,
) -> Path:
    """The local file of official model `name` of `kind` in `set`: bundled, cached, or downloaded now.

    The bundled model (:data:`BUNDLED`) is used where it is, without any download.  Others are kept
    where :func:`cached_model` says, fetched from :func:`models_root` (`base_url`,
    ``$SKETCHRNN_MODELS_URL`` or Google's) by the data's downloader, which resumes interrupted
    transfers, replaces a damaged cached file (`verify`: re-hash and fully check one) and keeps a
    new file only when its size, MD5 and content (:func:`model_problem`) are right.  `timeout` is
    in seconds per network operation; `progress` shows a progress bar on stderr.

    Raises:
        ValueError: `kind` or `set` is unknown.
        ZooError: not an official model, or the download fails (offline, no such file, a bad file):
            one line, starting with the name or the address.
    """
    from .transfer import Checks, fetch, http_failure

    _check(name, kind, set)
    bundled = bundled_model(name, kind, set)
    if bundled is not None:
        return bundled
    root = models_root(base_url)
    hint = ""
    if root.rsplit("/", 1)[-1] in SETS:
        hint = (f"; note: the base URL (--base-url, $SKETCHRNN_MODELS_URL) is the root above the sets, "
                f"e.g. {MODELS_URL}, not one of them")

    def http_error(url: str, exc: urllib.error.HTTPError) -> ZooError:
        if exc.code in (404, 410):
            return ZooError(f"{url}: the server has no {name}.{kind}.json in {set} (HTTP {exc.code}){hint}")
        return ZooError(http_failure(url, exc, hint))

    checks = Checks(f"magenta-js {kind} model", lambda path: model_problem(path, kind), _glance)
    return fetch(model_url(name, kind, set, base_url), cached_model(name, kind, set, directory), checks,
                 error=ZooError, http_error=http_error, setting="--base-url / $SKETCHRNN_MODELS_URL",
                 timeout=timeout, progress=progress, verify=verify)


def model_path(spec: str | os.PathLike[str]) -> Path:
    """A model argument → a local path: the path itself if it exists, else a zoo name's file.

    ``cat``, ``cat.gen`` and ``cat.vae`` name official models of ``large_models`` (downloaded when
    missing, with a progress bar where stderr is a terminal); anything else that does not exist is
    a FileNotFoundError of one line.
    """
    path = Path(spec)
    if path.exists():
        return path
    text = str(spec)
    parsed = parse_name(text)
    if parsed is not None:
        return download_model(*parsed, progress=sys.stderr.isatty())
    if len(path.parts) > 1 and not path.parent.exists():  # a path, not a name: say which part is missing
        raise FileNotFoundError(f"{text}: no such model: the folder {path.parent} does not exist")
    if len(path.parts) > 1:
        raise FileNotFoundError(f"{text}: no such model: there is no {path.name} in {path.parent}")
    stem = text.removesuffix(".json")
    hint = f"; the official model is named {stem.removesuffix('.gen')}" if parse_name(stem) else _suggest(text)
    raise FileNotFoundError(
        f"{text}: no such model: not a training run, a saved model directory or a model file, "
        f"nor an official model name{hint} (`sketchrnn models list` lists them)")
