"""What the app needs from the server process: the engine loaded once in the background, and safe file serving.

``streamlit run app.py`` starts app.py's ``st.App``, whose start-up hook calls
``start`` so the model and index load while the server comes up, not when the
first visitor arrives. Browser sessions then take the same ``EngineLoader``
from ``loader``. The source copies under ``static/`` are kept to exactly the
indexed versions, and ``NoCrossOriginStatic`` stops other sites' pages from
reading them (Streamlit marks those files readable by any origin).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from . import pageview, ui
from .embed import load_embedder, set_threads
from .engine import Engine
from .records import Document

log = logging.getLogger(__name__)


def publish(engine: Engine, document: Document, static_dir: Path) -> str | None:
    """The URL of the indexed version of a source under the static route, or None when unavailable."""
    current = engine.store.documents.get(document.doc_id)
    if current is None or current.content_hash != document.content_hash:
        return None
    texts: list[str] = []
    if document.kind == "html":
        texts = [p.text for n in range(1, document.n_pages + 1) if (p := engine.page(document.doc_id, n)) is not None]
    return ui.publish_source(document, engine.source_path(document.doc_id), static_dir, texts)


class EngineLoader:
    """Loads one index and its model in a background thread; then keeps the served copies in step with it."""

    def __init__(self, index: str, model: str, static_dir: Path | None) -> None:
        self.index, self.model, self.static_dir = index, model, static_dir
        self.future: Future[Engine] = Future()
        self.synced = ""  # the index generation the static folder matches
        self._sync_lock = threading.Lock()
        threading.Thread(target=self._load, name="engine-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            set_threads(1)  # one thread answers a short query fastest
            engine = Engine(self.index, embedder=load_embedder(self.model) if self.model else None)
            engine.warm_up()  # the first real question then pays no first-call costs
        except Exception as exc:  # handed to the page, which says what to do
            self.future.set_exception(exc)
            return
        self.future.set_result(engine)
        log.info("engine ready for %s", self.index)
        try:
            self.sync(engine)
        except OSError:
            log.exception("could not publish the sources under %s", self.static_dir)

    def engine(self) -> Engine:
        """The engine, waiting for the load if it is still running; raises what the load raised."""
        return self.future.result()

    def sync(self, engine: Engine) -> None:
        """Serve exactly the indexed versions of the documents: publish new ones, delete the rest."""
        if self.static_dir is None:
            return
        with self._sync_lock:
            generation = engine.store.generation
            if self.synced == generation:
                return
            documents = engine.documents()
            removed = ui.prune_published(self.static_dir, [ui.published_name(d) for d in documents])
            if removed:
                pageview.clear_cache()
                log.info("stopped serving %d removed or outdated source copies", len(removed))
            for document in documents:
                publish(engine, document, self.static_dir)
            self.synced = generation


_LOADERS: dict[tuple[str, str], EngineLoader] = {}
_LOADERS_LOCK = threading.Lock()


def loader(index: str, model: str, static_dir: Path | None) -> EngineLoader:
    """The process's loader for an index and model, started on first use."""
    with _LOADERS_LOCK:
        found = _LOADERS.get((index, model))
        if found is None:
            found = _LOADERS[(index, model)] = EngineLoader(index, model, static_dir)
        return found


def forget(index: str, model: str) -> None:
    """Drop a loader (the index was missing or rebuilt), so the next visit loads afresh."""
    with _LOADERS_LOCK:
        _LOADERS.pop((index, model), None)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class NoCrossOriginStatic:
    """ASGI middleware: files under ``/app/static/`` are served without ``Access-Control-Allow-Origin``.

    The browser then lets only the app's own pages read them; a link or a
    new tab still opens them as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or "/app/static/" not in str(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def without_cors(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                      if k.lower() != b"access-control-allow-origin"]
            await send(message)

        await self.app(scope, receive, without_cors)
