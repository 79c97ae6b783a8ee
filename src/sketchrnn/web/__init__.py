"""`sketchrnn serve`: a local web app that finishes drawings, dreams and morphs (``pip install sketchrnn[web]``).

`create_app(models)` builds the FastAPI app (the page, ``/api/...`` and their streaming forms);
every model has one shared decoder batch (`engine.ModelWorker`) that concurrent requests join.
"""

from __future__ import annotations

from .app import Limits, create_app, default_models

__all__ = ["Limits", "create_app", "default_models"]
