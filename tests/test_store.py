"""The index folder: manifests, generations, pruning, the write lock and damaged files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.errors import IndexLockedError, IndexMismatchError, IndexMissingError
from qa.ingest import IngestSettings, ingest
from qa.records import Chunk, DocMeta, Document, Page, Unit
from qa.store import (
    CURRENT,
    DB,
    FORMAT_VERSION,
    LEXICAL,
    MANIFEST,
    VECTORS,
    GenerationWriter,
    IndexStore,
    Manifest,
    current_generation,
    generations,
    mismatch,
    prune,
    read_manifest,
    write_lock,
)

from conftest import FakeEmbedder
from corpora import build_corpus, build_index

SERIAL = IngestSettings(workers=0)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    return build_index(tmp_path, n_docs=4)


def _manifest(**changes: Any) -> Manifest:  # any Manifest field, by name
    base = Manifest(format_version=FORMAT_VERSION, model="m", model_hash="h", dimension=8, chunking={"chunk_tokens": 10},
                    built_at="2024-01-01T00:00:00+00:00", corpus_dir="/c", documents={"a.pdf": "k"}, counts={"chunks": 1},
                    skipped={"b.pdf": ["k2", "reason"]}, generation="")
    return replace(base, **changes)


def _why(m: Manifest, *, model: str = "m", model_hash: str = "h", dimension: int = 8,
         chunking: dict[str, object] | None = None) -> str:
    """mismatch() with settings that match ``_manifest()`` unless changed; "" when they match."""
    return mismatch(m, model=model, model_hash=model_hash, dimension=dimension,
                    chunking={"chunk_tokens": 10} if chunking is None else chunking) or ""


def test_manifest_round_trip() -> None:
    manifest = _manifest()
    assert Manifest.from_json(manifest.to_json(), "m.json") == manifest


@pytest.mark.parametrize(
    "text",
    [
        "not json at all",
        "[1, 2, 3]",
        "null",
        json.dumps({**json.loads(_manifest().to_json()), "surprise": 1}),
        json.dumps({**json.loads(_manifest().to_json()), "documents": 5}),
        json.dumps({**json.loads(_manifest().to_json()), "documents": {"a.pdf": 7}}),
        json.dumps({**json.loads(_manifest().to_json()), "dimension": "8"}),
        json.dumps({**json.loads(_manifest().to_json()), "dimension": 0}),
        json.dumps({**json.loads(_manifest().to_json()), "dimension": True}),
        json.dumps({**json.loads(_manifest().to_json()), "skipped": {"b.pdf": "reason"}}),
        json.dumps({**json.loads(_manifest().to_json()), "chunking": []}),
        json.dumps({k: v for k, v in json.loads(_manifest().to_json()).items() if k != "model"}),
        json.dumps({**json.loads(_manifest().to_json()), "format_version": 99}),
        '{"__class__": "os.system", "args": ["echo pwned"]}',
    ],
)
def test_odd_manifests_are_a_mismatch_not_a_crash(text: str) -> None:
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        Manifest.from_json(text, "manifest.json")


def test_mismatch_reasons() -> None:
    m = _manifest()
    assert mismatch(m, model="m", model_hash="h", dimension=8, chunking={"chunk_tokens": 10}) is None
    assert "model" in _why(m, model_hash="other")
    assert "dimension" in _why(m, dimension=4)
    assert "chunking" in _why(m, chunking={"chunk_tokens": 11})
    assert "format" in _why(_manifest(format_version=0))


def _current(index: Path) -> Path:
    return index / str(current_generation(index))


@pytest.mark.parametrize(
    "damage",
    ["manifest-garbage", "manifest-extra-field", "manifest-binary", "vectors-garbage", "vectors-wrong-dimension",
     "db-garbage", "db-missing-table", "vectors-count", "lexical-garbage", "lexical-missing", "lexical-pickled",
     "lexical-count"],
)
def test_damaged_generation_files_give_a_clear_error(built: tuple[Path, Path], damage: str) -> None:
    corpus, index = built
    gen = _current(index)
    if damage == "manifest-garbage":
        (gen / MANIFEST).write_text("{{{", encoding="utf-8")
    elif damage == "manifest-extra-field":
        data = json.loads((gen / MANIFEST).read_text())
        data["python_object"] = {"py/reduce": "os.system"}
        (gen / MANIFEST).write_text(json.dumps(data))
    elif damage == "manifest-binary":
        (gen / MANIFEST).write_bytes(os.urandom(200) + b"\xff")
    elif damage == "vectors-garbage":
        (gen / VECTORS).write_bytes(b"\x00garbage" * 50)
    elif damage == "vectors-wrong-dimension":
        import faiss

        other = faiss.IndexFlatIP(3)
        faiss.write_index(other, str(gen / VECTORS))
    elif damage == "db-garbage":
        (gen / DB).write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    elif damage == "db-missing-table":
        (gen / DB).unlink()
        sqlite3.connect(gen / DB).execute("CREATE TABLE other (x)").connection.close()
    elif damage == "vectors-count":
        import faiss

        index_obj = faiss.read_index(str(gen / VECTORS))
        index_obj.add(np.zeros((1, index_obj.d), dtype=np.float32))
        faiss.write_index(index_obj, str(gen / VECTORS))
    elif damage == "lexical-garbage":
        (gen / LEXICAL).write_bytes(b"PK\x03\x04" + os.urandom(300))
    elif damage == "lexical-missing":
        (gen / LEXICAL).unlink()
    elif damage == "lexical-pickled":  # an object array would need pickle to load: refused, never run
        with (gen / LEXICAL).open("wb") as handle:
            np.savez(handle, terms=np.array([{"py/reduce": "os.system"}], dtype=object), starts=np.zeros(2),
                     ids=np.zeros(0), scores=np.zeros(0), rows=np.array([1]))
    elif damage == "lexical-count":
        with np.load(gen / LEXICAL, allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        data["rows"] = data["rows"] + 1
        with (gen / LEXICAL).open("wb") as handle:
            np.savez(handle, **data)
    with pytest.raises((IndexMismatchError, IndexMissingError), match="--rebuild"):
        IndexStore(index)
    with pytest.raises((IndexMismatchError, IndexMissingError), match="--rebuild"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    report = ingest(corpus, index, FakeEmbedder(), settings=SERIAL, rebuild=True)
    assert IndexStore(index).count("chunks") == report.chunks


@pytest.mark.parametrize("content", [b"../../etc", b"/etc/passwd", b"gen-1/../../x", b"\xff\xfe\x00", b"tmp-abc"])
def test_current_must_name_a_generation(built: tuple[Path, Path], content: bytes) -> None:
    _, index = built
    (index / CURRENT).write_bytes(content)
    with pytest.raises(IndexMismatchError, match="CURRENT is damaged.*--rebuild"):
        IndexStore(index)


def test_current_pointing_at_a_missing_generation(built: tuple[Path, Path]) -> None:
    _, index = built
    shutil.rmtree(_current(index))
    with pytest.raises(IndexMissingError, match="--rebuild"):
        read_manifest(index)


def test_empty_current_is_no_index(tmp_path: Path) -> None:
    (tmp_path / CURRENT).write_text("\n")
    assert current_generation(tmp_path) is None
    with pytest.raises(IndexMissingError, match="qa ingest"):
        IndexStore(tmp_path)


def test_empty_current_beside_a_generation_keeps_it(built: tuple[Path, Path]) -> None:
    """An emptied CURRENT is damage: the intact generation is kept, not deleted and re-embedded."""
    corpus, index = built
    name = current_generation(index)
    (index / CURRENT).write_text("")
    with pytest.raises(IndexMismatchError, match="damaged"):
        current_generation(index)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert (index / str(name)).is_dir()
    (index / CURRENT).write_text(f"{name}\n")
    assert IndexStore(index).count("chunks") > 0


def test_generations_count_up_and_prune_keeps_the_previous_one(built: tuple[Path, Path]) -> None:
    corpus, index = built
    names = [current_generation(index) or ""]
    for _ in range(3):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL, rebuild=True)  # several in the same second
        names.append(current_generation(index) or "")
    assert all(names), names
    assert len(set(names)) == 4
    assert names == sorted(names)  # sequence numbers order them, whatever the clock says
    assert generations(index) == names[-2:]  # the current and the previous


def test_prune_removes_unfinished_work_and_orphans(built: tuple[Path, Path]) -> None:
    corpus, index = built
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL, rebuild=True)
    previous, current = generations(index)
    (index / "tmp-deadbeef").mkdir()
    (index / "tmp-deadbeef" / DB).write_bytes(b"half written")
    (index / "CURRENT.tmp-123").write_text("gen-x")
    orphan = index / "gen-999999-20990101T000000Z-abcdef01"  # renamed in, but CURRENT never switched
    shutil.copytree(index / current, orphan)
    with write_lock(index):
        prune(index)
    assert sorted(p.name for p in index.iterdir() if not p.name.startswith(".")) == sorted([CURRENT, previous, current])
    assert IndexStore(index).generation == current


def test_prune_with_no_current_removes_never_used_generations(tmp_path: Path) -> None:
    (tmp_path / "gen-000001-20240101T000000Z-aaaaaaaa").mkdir()
    prune(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_prune_keeps_everything_when_current_is_damaged(built: tuple[Path, Path]) -> None:
    _, index = built
    names = generations(index)
    (index / CURRENT).write_bytes(b"\xff")
    prune(index)
    assert generations(index) == names


def test_write_lock_refuses_a_second_writer(tmp_path: Path) -> None:
    with write_lock(tmp_path):
        with pytest.raises(IndexLockedError) as info:
            with write_lock(tmp_path):
                pass
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and "wait for it to finish" in message
    with write_lock(tmp_path):  # released on exit
        pass


def test_writer_checks_vectors_and_abandon_leaves_no_trace(tmp_path: Path) -> None:
    writer = GenerationWriter(tmp_path, 4)
    doc = Document("a.txt", DocMeta(title="A"), "h", "txt", 1)
    page = Page("a.txt", 1, "1", "hello world")
    chunk = Chunk("a.txt", 1, "1", "", 0, 5, "hello")
    with pytest.raises(ValueError, match="1 chunks but 2 vectors"):
        writer.add(doc, [page], [chunk], np.zeros((2, 4), dtype=np.float32))
    writer.abandon()
    assert list(tmp_path.iterdir()) == []


def test_writer_commit_is_readable(tmp_path: Path) -> None:
    writer = GenerationWriter(tmp_path, 4)
    doc = Document("a.txt", DocMeta(title="A title", year=2020), "h", "txt", 1)
    page = Page("a.txt", 1, "1", "hello world again")
    chunks = [Chunk("a.txt", 1, "1", "Intro", 0, 11, "hello world"), Chunk("a.txt", 1, "1", "Intro", 6, 17, "world again")]
    vectors = np.eye(4, dtype=np.float32)[:2]
    writer.add(doc, [page], chunks, vectors)
    name = writer.commit(_manifest(dimension=4, documents={"a.txt": "k"}, counts={"chunks": 2}))
    store = IndexStore(tmp_path)
    assert store.generation == name and store.manifest.generation == name
    assert store.documents["a.txt"] == doc
    assert store.chunks([0, 1]) == {0: chunks[0], 1: chunks[1]}
    assert store.page("a.txt", 1) == page and store.page("a.txt", 2) is None
    assert np.array_equal(store.all_vectors(), vectors)
    assert [i for i, _ in store.search_dense(np.eye(4, dtype=np.float32)[1], 5)][0] == 1
    assert store.search_dense(np.eye(4, dtype=np.float32)[0], 5, allowed=np.array([1]))[0][0] == 1
    assert store.filtered_ids(None, None, None) is None
    none_that_year = store.filtered_ids(None, 2021, None)
    assert none_that_year is not None and list(none_that_year) == []
    assert [i for i, _ in store.search_terms(["again"], 5)] == [1]
    assert [i for i, _ in store.search_terms(["Titles", "hello"], 5)] == [0, 1]  # "hello" lifts chunk 0
    assert store.search_terms(["again"], 5, allowed=np.array([0])) == []
    assert store.search_terms(['"again" AND (', "NEAR"], 5) == [(1, store.search_terms(["again"], 5)[0][1])]
    assert store.matches_any('"again"') and store.matches_any('"title"') and not store.matches_any('"absent"')
    assert store.matches_any('"again" AND (') is False and store.matches_any(None) is False
    # FTS5's own tokens: case folded, stemmed, split where FTS5 splits.
    assert store.stems(["Again", "titles", "foo_again"]) == ["again", "titl", "foo", "again"]
    store.close()  # a new connection gets its own tokenizer tables
    assert store.stems(["Again"]) == ["again"] and [i for i, _ in store.search_terms(["again"], 5)] == [1]


def test_writer_counts_are_what_loading_checks(tmp_path: Path) -> None:
    """A manifest given the writer's own counts loads; one chunk short of them is refused."""
    writer = GenerationWriter(tmp_path / "ok", 4)
    assert writer.counts == {"documents": 0, "pages": 0, "chunks": 0, "units": 0}
    for n, (name, n_chunks) in enumerate((("a.txt", 2), ("b.txt", 3), ("empty.txt", 0))):
        # Each page's one unit has a vector, numbered from 0 within its document.
        pages = [Page(name, 1, "1", "some words", (Unit(0, 4, "some", "sentence", vector=0),)),
                 Page(name, 2, "2", "more words", (Unit(5, 10, "words", "sentence", vector=1),))]
        chunks = [Chunk(name, 1, "1", "", 0, 4, f"word {i}") for i in range(n_chunks)]
        units = np.array([[n, 0, 0, 1], [n, 0, 1, 0]], dtype=np.float32)
        writer.add(Document(name, DocMeta(title=name), "h", "txt", 2), pages, chunks,
                   np.ones((n_chunks, 4), dtype=np.float32), units)
    assert writer.counts == {"documents": 3, "pages": 6, "chunks": 5, "units": 6}
    writer.commit(_manifest(dimension=4, counts=writer.counts))
    store = IndexStore(tmp_path / "ok")
    assert store.count("chunks") == 5 and store.manifest.counts == {"documents": 3, "pages": 6, "chunks": 5, "units": 6}
    # The third document's second page keeps its own unit's vector, renumbered past the first two documents'.
    page = store.page("empty.txt", 2)
    assert page is not None
    (unit,) = page.units
    assert unit.text == "words" and unit.vector == 5
    assert np.allclose(store.unit_vectors_for([unit.vector]), np.array([[2, 0, 1, 0]]) / np.sqrt(5), atol=1e-3)
    store.close()
    with pytest.raises(ValueError, match="vector rows up to 1 of 0"):
        writer2 = GenerationWriter(tmp_path / "bad", 4)
        writer2.add(Document("a.txt", DocMeta(title="A"), "h", "txt", 1),
                    [Page("a.txt", 1, "1", "x y", (Unit(0, 1, "x", "sentence", vector=1),))], [], np.zeros((0, 4)))
    writer2.abandon()

    short = GenerationWriter(tmp_path / "short", 4)
    short.add(Document("a.txt", DocMeta(title="A"), "h", "txt", 1), [Page("a.txt", 1, "1", "x y")],
              [Chunk("a.txt", 1, "1", "", 0, 1, "x"), Chunk("a.txt", 1, "1", "", 2, 3, "y")], np.ones((2, 4), dtype=np.float32))
    short.commit(_manifest(dimension=4, counts={**short.counts, "chunks": short.counts["chunks"] - 1}))
    with pytest.raises(IndexMismatchError, match="the manifest says 1"):
        IndexStore(tmp_path / "short")


def test_store_is_read_only(built: tuple[Path, Path]) -> None:
    _, index = built
    store = IndexStore(index)
    with pytest.raises(sqlite3.OperationalError):
        store.db.execute("DELETE FROM chunks")


def test_a_generation_replaced_while_loading_is_retried(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """CURRENT switches between reading its name and opening the files: the store loads the new one."""
    corpus, index = built
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL, rebuild=True)
    old, new = generations(index)
    (index / CURRENT).write_text(old + "\n")
    real = IndexStore._load
    calls: list[str] = []

    def racing(self: IndexStore, name: str) -> None:
        calls.append(name)
        if len(calls) == 1:  # an ingest switches CURRENT and prunes the old generation right now
            (index / CURRENT).write_text(new + "\n")
            shutil.rmtree(index / old)
        real(self, name)

    monkeypatch.setattr(IndexStore, "_load", racing)
    store = IndexStore(index)
    assert calls == [old, new] and store.generation == new and store.manifest.generation == new


def test_old_format_generation_names_sort_first(tmp_path: Path) -> None:
    for name in ("gen-20250101T000000-abcdef12", "gen-000002-20240101T000000Z-aaaaaaaa", "gen-000010-20230101T000000Z-bbbbbbbb"):
        (tmp_path / name).mkdir()
    assert generations(tmp_path) == ["gen-20250101T000000-abcdef12", "gen-000002-20240101T000000Z-aaaaaaaa",
                                     "gen-000010-20230101T000000Z-bbbbbbbb"]


def test_index_path_with_uri_characters(tmp_path: Path) -> None:
    """'?', '#' and '%' in the index folder must not cut the SQLite URI short (and open another file)."""
    corpus = build_corpus(tmp_path / "corpus", n_docs=2)
    index = tmp_path / "odd ?name #1 %20"
    report = ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    store = IndexStore(index)
    assert store.count("chunks") == report.chunks > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "odd ?name #1 %20"]


def _rehash(gen: Path, name: str) -> None:
    """Record ``name``'s present sha256 in the manifest, as someone altering the index on purpose would."""
    import hashlib

    data = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    data["files"][name] = hashlib.sha256((gen / name).read_bytes()).hexdigest()
    (gen / MANIFEST).write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("claimed", [2**30, 2**34, -1])
def test_a_vector_count_the_file_cannot_hold_is_refused_before_loading(
        built: tuple[Path, Path], claimed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The count field (bytes 8-15 of a flat index) says more vectors than follow; faiss is never asked to load it."""
    import struct

    import qa.store

    corpus, index = built
    gen = _current(index)
    data = bytearray((gen / VECTORS).read_bytes())
    assert data[:4] == b"IxFI" and struct.unpack_from("<i", data, 4)[0] == FakeEmbedder().dimension
    struct.pack_into("<q", data, 8, claimed)
    (gen / VECTORS).write_bytes(bytes(data))
    _rehash(gen, VECTORS)

    def never(*_: object) -> None:
        raise AssertionError("faiss.read_index was called on a file declaring more than it holds")

    monkeypatch.setattr(qa.store.faiss, "read_index", never)
    with pytest.raises(IndexMismatchError) as refused:
        IndexStore(index)
    message = str(refused.value)
    assert f"declares {claimed} vectors" in message and message.endswith("rebuild with `qa ingest --rebuild`")
    assert "\n" not in message


def test_a_truncated_vector_file_is_refused_before_loading(built: tuple[Path, Path]) -> None:
    corpus, index = built
    gen = _current(index)
    data = (gen / VECTORS).read_bytes()
    (gen / VECTORS).write_bytes(data[:-4])
    _rehash(gen, VECTORS)
    with pytest.raises(IndexMismatchError, match=r"declares \d+ vectors .* but holds .*--rebuild"):
        IndexStore(index)
    (gen / VECTORS).write_bytes(data[:20])
    _rehash(gen, VECTORS)
    with pytest.raises(IndexMismatchError, match="too short.*--rebuild"):
        IndexStore(index)


def test_a_lock_file_with_another_name_is_refused_and_left_alone(built: tuple[Path, Path]) -> None:
    """``index/.lock`` hard-linked to a user's file: refused, and the file's bytes are not touched."""
    from qa.errors import IndexWriteError
    from qa.store import LOCK

    corpus, index = built
    victim = index.parent / "thesis.txt"
    victim.write_text("chapter one, irreplaceable\n", encoding="utf-8")
    (index / LOCK).unlink(missing_ok=True)
    os.link(victim, index / LOCK)
    with pytest.raises(IndexWriteError) as refused:
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert "hard link" in str(refused.value) and "remove it" in str(refused.value)
    assert victim.read_text(encoding="utf-8") == "chapter one, irreplaceable\n"
    with pytest.raises(IndexWriteError, match="hard link"), write_lock(index):
        pass
    (index / LOCK).unlink()  # once removed, the lock is made afresh and the ingest runs
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert victim.read_text(encoding="utf-8") == "chapter one, irreplaceable\n"


def test_unit_vectors_declaring_more_than_they_hold_are_refused(built: tuple[Path, Path]) -> None:
    """A units.npy whose header claims a huge array is refused before NumPy allocates it."""
    _, index = built
    gen = index / str(current_generation(index))
    path = gen / "units.npy"
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    header = data[:header_end].decode("latin1")
    forged = re.sub(r"'shape': \(\d+, (\d+)\)", r"'shape': (1000000000, \1)", header)
    assert forged != header
    forged = forged[:-1].ljust(len(header) - 1) + "\n"  # same header length, so the data stays in place
    path.write_bytes(forged.encode("latin1") + data[header_end:])
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["files"]["units.npy"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (gen / "manifest.json").write_text(json.dumps(manifest))
    refused = r"units.npy cannot be read \(declares 128000000000 bytes of float16 but holds \d+\); rebuild"
    with pytest.raises(IndexMismatchError, match=refused):
        IndexStore(index)


def test_pages_read_again_come_from_a_bounded_cache(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A page read again is the same frozen record; only the last PAGE_CACHE pages are kept."""
    import qa.store

    monkeypatch.setattr(qa.store, "PAGE_CACHE", 2)
    _, index = built
    store = IndexStore(index)
    doc_a, doc_b, doc_c = sorted(store.documents)[:3]
    first = store.page(doc_a, 1)
    assert first is not None and store.page(doc_a, 1) is first
    store.page(doc_b, 1)
    store.page(doc_c, 1)  # the third page pushes out the least recently read one
    again = store.page(doc_a, 1)
    assert again == first and again is not first
    assert store.page("no-such-document.pdf", 1) is None
    store.close()
