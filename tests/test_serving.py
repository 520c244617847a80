"""Serving: only indexed copies stay published, no cross-origin header on them, conversations by id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qa import serving, sessions, ui
from qa.engine import Engine
from qa.errors import QAError
from qa.ingest import IngestSettings, ingest
from qa.ui import Turn

from conftest import FakeEmbedder


def test_prune_deletes_copies_not_in_the_index(tmp_path: Path) -> None:
    static = tmp_path / "static"
    keep = static / "corpus" / "aaaa" / "kept.pdf"
    gone = static / "corpus" / "bbbb" / "removed.pdf"
    writing = static / "corpus" / "cccc" / ".new.pdf.1.2.tmp"
    for path in (keep, gone, writing):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-1.4")
    (static / "README.md").write_text("kept", encoding="utf-8")
    removed = ui.prune_published(static, ["corpus/aaaa/kept.pdf"])
    assert removed == ["corpus/bbbb/removed.pdf"]
    assert keep.is_file() and not gone.exists() and not gone.parent.exists()
    assert writing.is_file() and (static / "README.md").is_file()
    assert ui.prune_published(tmp_path / "nothing", []) == []


def run_asgi(app, path: str) -> list[tuple[bytes, bytes]]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path}, receive, send))
    return sent[0]["headers"]


async def inner(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"access-control-allow-origin", b"*"), (b"content-type", b"application/pdf")]})
    await send({"type": "http.response.body", "body": b"%PDF"})


def test_served_files_lose_the_cross_origin_header_and_other_routes_keep_theirs() -> None:
    app = serving.NoCrossOriginStatic(inner)
    assert run_asgi(app, "/app/static/corpus/aaaa/kept.pdf") == [(b"content-type", b"application/pdf")]
    assert (b"access-control-allow-origin", b"*") in run_asgi(app, "/_stcore/health")


def test_conversations_are_found_by_id_and_bounded() -> None:
    store = sessions.Conversations(limit=2)
    first_id, second_id, third_id = (sessions.new_id() for _ in range(3))
    assert sessions.valid_id(first_id) and not sessions.valid_id("../../etc") and not sessions.valid_id(None)
    first = store.get(first_id)
    first.turns.append(Turn(question="q"))
    assert store.get(first_id).turns == [Turn(question="q")]
    store.get(second_id)
    store.get(third_id)  # over the limit: the least recently used goes
    assert len(store) == 2 and store.get(first_id).turns == []
    talk = sessions.Conversation(turns=[Turn(question=str(n)) for n in range(sessions.MAX_TURNS + 5)])
    talk.trim()
    assert len(talk.turns) == sessions.MAX_TURNS and talk.turns[-1].question == str(sessions.MAX_TURNS + 4)


@pytest.fixture
def small_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An index of one Markdown file; opening it by folder loads the fake model, as the app would the real one."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.md").write_text("# Caseloads\n\nCaseloads for social workers fell to fifteen children.\n",
                                     encoding="utf-8")
    embedder = FakeEmbedder()
    ingest(corpus, tmp_path / "index", embedder, settings=IngestSettings(workers=0))
    monkeypatch.setattr("qa.engine.load_embedder", lambda name=None, from_index=False: embedder)
    monkeypatch.setattr(serving, "set_threads", lambda n: None)  # leave the test process's threads alone
    return str(tmp_path / "index")


def test_loader_warms_the_engine_before_handing_it_over(small_index: str, monkeypatch: pytest.MonkeyPatch) -> None:
    warmed: list[Engine] = []
    warm_up = Engine.warm_up

    def counted(self: Engine) -> None:
        warm_up(self)
        warmed.append(self)

    monkeypatch.setattr(Engine, "warm_up", counted)
    engine = serving.EngineLoader(small_index, "", None).engine()
    assert warmed == [engine]
    assert engine.ask("Did caseloads fall?", top_k=1).passages[0].document.doc_id == "notes.md"


def test_a_failed_warm_up_reaches_the_page(small_index: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Engine) -> None:
        raise QAError("the model cannot encode")

    monkeypatch.setattr(Engine, "warm_up", broken)
    loader = serving.EngineLoader(small_index, "", None)
    with pytest.raises(QAError, match="cannot encode"):
        loader.engine()
