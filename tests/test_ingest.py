"""Ingest: exact page spans, metadata precedence, incremental updates, mismatches, worker processes."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qa.chunking import ChunkSettings
from qa.engine import Engine
from qa.errors import DocumentError, IndexMismatchError, IndexMissingError
from qa.ingest import IngestSettings, ParseJob, _parse_all, ingest, read_catalogue
from qa.readers import RawDocument
from qa.records import IngestReport, ParsedDocument, Skipped
from qa.store import IndexStore, current_generation, generations

from conftest import FakeEmbedder, make_pdf
from corpora import Snapshot, build_corpus, snapshot

SERIAL = IngestSettings(workers=0)


def _ingest(corpus: Path, index: Path, embedder: FakeEmbedder | None = None, *,
            settings: IngestSettings = SERIAL, rebuild: bool = False) -> IngestReport:
    return ingest(corpus, index, embedder or FakeEmbedder(), settings=settings, rebuild=rebuild)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_corpus(tmp_path / "corpus", n_docs=8)



def _texts(store: IndexStore, doc_id: str) -> int:
    """The texts an ingest embeds for one document: its chunks, then its quotable units (those given a vector)."""
    units = sum(1 for page in store.pages(doc_id) for unit in page.units if unit.vector is not None)
    assert units > 0, f"{doc_id} has no unit with a vector"
    return len(store.doc_chunks(doc_id)) + units

def test_every_chunk_is_an_exact_span_of_one_page(corpus: Path, tmp_path: Path) -> None:
    make_pdf(corpus / "straddle.pdf", [
        "The review found that many of the children who",
        "were placed out of area lost contact with their schools and friends.",
    ], footer=None)
    report = _ingest(corpus, tmp_path / "index")
    store = IndexStore(tmp_path / "index")
    assert report.chunks == store.count("chunks") > 0
    checked = 0
    for doc_id in store.documents:
        pages = {p.page: p for p in store.pages(doc_id)}
        assert len(pages) == store.documents[doc_id].n_pages
        for _, chunk in store.doc_chunks(doc_id):
            page = pages[chunk.page]
            assert page.text[chunk.start:chunk.end] == chunk.text
            assert chunk.page_label == page.label
            checked += 1
    assert checked == report.chunks
    straddle = [c.text for _, c in store.doc_chunks("straddle.pdf")]
    assert straddle and not any("who" in t and "were placed" in t for t in straddle)


def test_report_counts_and_page_labels(corpus: Path, tmp_path: Path) -> None:
    report = _ingest(corpus, tmp_path / "index")
    store = IndexStore(tmp_path / "index")
    assert report.documents == len(store.documents) == 8
    assert report.pages == store.count("pages")
    assert report.embedded_chunks == report.chunks
    assert report.new_or_changed == tuple(sorted(store.documents))
    labels = [p.label for p in store.pages("report-01-adolescents.pdf")]
    assert labels == ["i", "1", "2"]  # /PageLabels: roman front matter
    assert [p.label for p in store.pages("report-00-kinship.pdf")] == ["1", "2", "3"]
    # The running header and footer are gone from every stored page.
    for doc_id in store.documents:
        for page in store.pages(doc_id):
            assert "Innovation Programme" not in page.text and "Page " not in page.text


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "title", "authors", "year", "publisher", "url", "licence"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in writer.fieldnames})


def test_metadata_precedence(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_pdf(corpus / "a.pdf", ["Body text of the catalogued report on kinship care."], title="Title In The PDF")
    make_pdf(corpus / "sub" / "b.pdf", ["Body text of the report in a subfolder."])
    make_pdf(corpus / "c.pdf", ["Body text whose title comes from the PDF."], title="PDF Metadata Title")
    make_pdf(corpus / "d.pdf", ["Body text with a catalogue year but no catalogue title."], title="Own Title")
    (corpus / "e.md").write_text("Intro line.\n\n# First Heading Here\n\nBody text of the notes.\n", encoding="utf-8")
    (corpus / "f_file-name.txt").write_text("plain words without any heading at all.\n", encoding="utf-8")
    _write_csv(corpus / "sources.csv", [
        {"path": "a.pdf", "title": "Catalogue Title", "authors": "A. Author", "year": "2017", "url": "https://example.org/a"},
        {"path": "d.pdf", "year": "2016", "publisher": "DfE"},
    ])
    _write_csv(corpus / "sub" / "sources.csv", [{"path": "b.pdf", "title": "Sub Catalogue Title", "year": "2019"}])
    _ingest(corpus, tmp_path / "index")
    docs = IndexStore(tmp_path / "index").documents
    assert (docs["a.pdf"].title, docs["a.pdf"].meta.authors, docs["a.pdf"].year, docs["a.pdf"].meta.url) == (
        "Catalogue Title", "A. Author", 2017, "https://example.org/a")
    assert (docs["sub/b.pdf"].title, docs["sub/b.pdf"].year) == ("Sub Catalogue Title", 2019)
    assert docs["c.pdf"].title == "PDF Metadata Title"
    assert (docs["d.pdf"].title, docs["d.pdf"].year, docs["d.pdf"].meta.publisher) == ("Own Title", 2016, "DfE")
    assert docs["e.md"].title == "First Heading Here"
    assert docs["f_file-name.txt"].title == "F file name"


def test_catalogue_reading_is_forgiving(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "sources.csv").write_text("\ufeffpath,title,year\nx.pdf, Spaced Title ,20xx\n,No path,2019\n", encoding="utf-8")
    (corpus / ".hidden").mkdir()
    _write_csv(corpus / ".hidden" / "sources.csv", [{"path": "y.pdf", "title": "Hidden"}])
    (corpus / "bad").mkdir()
    (corpus / "bad" / "sources.csv").write_bytes(b"path,title\n\xff\xfe\x00bad")
    catalogue = read_catalogue(corpus)
    assert set(catalogue) == {"x.pdf"}
    assert catalogue["x.pdf"].title == "Spaced Title" and catalogue["x.pdf"].year is None


def test_unchanged_corpus_embeds_nothing_and_keeps_the_generation(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    first = FakeEmbedder()
    _ingest(corpus, index, first)
    assert first.texts_embedded > 0
    generation = current_generation(index)
    before = snapshot(index)
    os.utime(corpus / "report-00-kinship.pdf", (1, 1))  # a new mtime alone is no change
    again = FakeEmbedder()
    report = _ingest(corpus, index, again)
    assert again.texts_embedded == 0 and report.embedded_chunks == 0
    assert report.new_or_changed == () and report.removed == ()
    assert current_generation(index) == generation and generations(index) == [generation]
    assert report.documents == 8 and report.chunks == len(before["chunks"])
    assert snapshot(index) == before


def test_changed_new_and_deleted_files(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _ingest(corpus, index)
    before = snapshot(index)

    (corpus / "notes-03-caseloads.md").write_text("# Changed notes\n\nWorkload weighting tools were piloted.\n", encoding="utf-8")
    changed = FakeEmbedder()
    report = _ingest(corpus, index, changed)
    store = IndexStore(index)
    assert report.new_or_changed == ("notes-03-caseloads.md",)
    assert changed.texts_embedded == _texts(store, "notes-03-caseloads.md")
    assert report.embedded_chunks == len(store.doc_chunks("notes-03-caseloads.md"))
    assert "Workload weighting" in store.pages("notes-03-caseloads.md")[0].text
    # Unchanged documents keep their chunks and vectors exactly.
    old_store_docs = before["documents"]
    assert {k: v for k, v in store.documents.items() if k != "notes-03-caseloads.md"} == {
        k: v for k, v in old_store_docs.items() if k != "notes-03-caseloads.md"}
    assert _doc_vectors(store, "report-00-kinship.pdf").tobytes() == _vectors_from(before, "report-00-kinship.pdf").tobytes()

    make_pdf(corpus / "new-report.pdf", ["A brand new report about virtual school heads and attainment."])
    added = FakeEmbedder()
    report = _ingest(corpus, index, added)
    assert report.new_or_changed == ("new-report.pdf",)
    assert added.texts_embedded == _texts(IndexStore(index), "new-report.pdf") > 0

    (corpus / "report-00-kinship.pdf").unlink()
    deleted = FakeEmbedder()
    report = _ingest(corpus, index, deleted)
    store = IndexStore(index)
    assert deleted.texts_embedded == 0
    assert report.removed == ("report-00-kinship.pdf",)
    assert "report-00-kinship.pdf" not in store.documents
    assert store.doc_chunks("report-00-kinship.pdf") == [] and store.pages("report-00-kinship.pdf") == []
    assert store.search_terms(["doc00x"], 50) == []  # the deleted report's own word is gone from the lexical index too
    assert store.search_terms(["doc01x"], 50) != []
    assert store.vectors.ntotal == store.count("chunks")


def _doc_vectors(store: IndexStore, doc_id: str) -> np.ndarray:
    ids = [i for i, _ in store.doc_chunks(doc_id)]
    return store.all_vectors()[ids]


def _vectors_from(snap: Snapshot, doc_id: str) -> np.ndarray:
    chunks = snap["chunks"]
    vectors = np.frombuffer(snap["vectors"], dtype=np.float32).reshape(len(chunks), -1)
    ids = [i for i, c in enumerate(chunks) if c.doc_id == doc_id]
    return vectors[ids]


def test_incremental_result_equals_a_clean_build(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _ingest(corpus, index)
    (corpus / "notes-07-exploitation.md").write_text("# Replaced\n\nDetached youth work reached young "
                                                     "people.\n", encoding="utf-8")
    (corpus / "report-02-conferences.pdf").unlink()
    make_pdf(corpus / "zz-new.pdf", ["New findings about parenting assessments and court timescales."])
    _ingest(corpus, index)
    _ingest(corpus, tmp_path / "clean")
    assert snapshot(index) == snapshot(tmp_path / "clean")


def test_catalogue_edit_re_embeds_only_that_document(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _ingest(corpus, index)
    text = (corpus / "sources.csv").read_text(encoding="utf-8")
    assert "Evaluation of kinship services" in text
    (corpus / "sources.csv").write_text(text.replace("Evaluation of kinship "
                                                     "services", "Kinship Care Evaluation"), encoding="utf-8")
    embedder = FakeEmbedder()
    report = _ingest(corpus, index, embedder)
    store = IndexStore(index)
    assert report.new_or_changed == ("report-00-kinship.pdf",)
    assert embedder.texts_embedded == _texts(store, "report-00-kinship.pdf")
    assert store.documents["report-00-kinship.pdf"].title == "Kinship Care Evaluation"


@pytest.mark.parametrize("other", [FakeEmbedder(dimension=32), FakeEmbedder(name="another-model")])
def test_another_model_needs_a_rebuild(corpus: Path, tmp_path: Path, other: FakeEmbedder) -> None:
    index = tmp_path / "index"
    _ingest(corpus, index)
    generation = current_generation(index)
    with pytest.raises(IndexMismatchError, match="--rebuild") as info:
        _ingest(corpus, index, other)
    assert "model" in str(info.value) or "dimension" in str(info.value)
    assert current_generation(index) == generation  # nothing written
    report = _ingest(corpus, index, other, rebuild=True)
    store = IndexStore(index)
    assert report.embedded_chunks == report.chunks > 0
    assert store.manifest.model == other.name and store.vectors.d == other.dimension


def test_other_chunk_settings_need_a_rebuild(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _ingest(corpus, index)
    smaller = IngestSettings(workers=0, chunking=ChunkSettings(chunk_tokens=60, overlap_tokens=10))
    with pytest.raises(IndexMismatchError, match=r"chunking.*--rebuild"):
        _ingest(corpus, index, settings=smaller)
    before = IndexStore(index).count("chunks")
    _ingest(corpus, index, settings=smaller, rebuild=True)
    store = IndexStore(index)
    assert store.manifest.chunking["chunk_tokens"] == 60
    assert store.count("chunks") > before


def test_missing_index_says_run_qa_ingest(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="qa ingest"):
        IndexStore(tmp_path / "nowhere")
    with pytest.raises(IndexMissingError, match="qa ingest"):
        Engine(tmp_path / "nowhere", embedder=FakeEmbedder())


def test_corpus_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="not a folder"):
        _ingest(tmp_path / "missing", tmp_path / "index")


def test_bad_files_are_remembered_until_they_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    ingest_module = importlib.import_module("qa.ingest")  # `qa.ingest` the attribute is the function
    corpus = tmp_path / "corpus"
    make_pdf(corpus / "good.pdf", ["Good text about the programme and its projects."])
    (corpus / "bad.pdf").write_bytes(b"not a pdf at all")
    calls: list[str] = []
    real = ingest_module.read_document

    def counting(path: Path, rel: str, **kwargs: int) -> RawDocument:
        calls.append(rel)
        return real(path, rel, **kwargs)

    monkeypatch.setattr(ingest_module, "read_document", counting)
    index = tmp_path / "index"
    first = _ingest(corpus, index)
    assert [s.path for s in first.skipped] == ["bad.pdf"] and calls == ["bad.pdf", "good.pdf"]
    calls.clear()
    again = _ingest(corpus, index)
    assert calls == [] and [s.path for s in again.skipped] == ["bad.pdf"]
    assert again.skipped[0].reason == first.skipped[0].reason
    make_pdf(corpus / "bad.pdf", ["Now a real PDF about placement sufficiency."])
    fixed = _ingest(corpus, index)
    assert calls == ["bad.pdf"] and fixed.skipped == () and fixed.new_or_changed == ("bad.pdf",)


def test_truncated_documents_are_read_again_when_limits_rise(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_pdf(corpus / "long.pdf", [f"Page {w} discusses a different aspect of practice." for w in "abcdef"], footer=None)
    index = tmp_path / "index"
    capped = IngestSettings(workers=0, max_pages=2)
    _ingest(corpus, index, settings=capped)
    assert IndexStore(index).documents["long.pdf"].n_pages == 2
    embedder = FakeEmbedder()
    _ingest(corpus, index, embedder, settings=capped)
    assert embedder.texts_embedded == 0  # same limits: up to date
    _ingest(corpus, index, embedder)
    assert embedder.texts_embedded > 0
    assert IndexStore(index).documents["long.pdf"].n_pages == 6
    again = FakeEmbedder()
    _ingest(corpus, index, again)
    assert again.texts_embedded == 0  # read in full: no longer tied to the limits


def test_worker_processes_match_in_process_parsing(corpus: Path, tmp_path: Path) -> None:
    _ingest(corpus, tmp_path / "serial")
    report = _ingest(corpus, tmp_path / "workers", settings=IngestSettings(workers=2))
    assert report.documents == 8
    assert snapshot(tmp_path / "serial") == snapshot(tmp_path / "workers")


def _jobs(folder: Path, names: list[str]) -> list[ParseJob]:
    jobs = []
    for name in names:
        path = folder / name
        path.write_text(f"# {name}\n\nNotes for {name} about family support.\n", encoding="utf-8")
        jobs.append(ParseJob(str(path), name, None, ChunkSettings(), None, 100, 100_000))
    return jobs


def test_a_crashing_worker_is_pinned_on_its_file(tmp_path: Path) -> None:
    """A file that kills its reader process is skipped; every other file is still parsed."""
    import ingest_worker

    jobs = _jobs(tmp_path, ["a.md", "b.md", "crash-c.md", "d.md", "e.md", "f.md"])
    results = list(_parse_all(jobs, 2, parse=ingest_worker.crash_on_marked))
    skipped = [r for r in results if isinstance(r, Skipped)]
    parsed = sorted(r.document.doc_id for r in results if isinstance(r, ParsedDocument))
    assert [s.path for s in skipped] == ["crash-c.md"]
    assert "crashed its reader process" in skipped[0].reason and "split" in skipped[0].reason
    assert parsed == ["a.md", "b.md", "d.md", "e.md", "f.md"]


def test_a_passing_worker_crash_loses_nothing(tmp_path: Path) -> None:
    import ingest_worker

    jobs = _jobs(tmp_path, ["a.md", "flaky-b.md", "c.md", "d.md"])
    results = list(_parse_all(jobs, 2, parse=ingest_worker.crash_once))
    parsed = [r for r in results if isinstance(r, ParsedDocument)]
    assert len(parsed) == len(results)
    assert sorted(r.document.doc_id for r in parsed) == ["a.md", "c.md", "d.md", "flaky-b.md"]


def test_a_reader_over_its_memory_cap_skips_only_that_file(tmp_path: Path) -> None:
    """Reader processes run under an address-space cap: a file needing more is a passing skip."""
    import ingest_worker

    jobs = _jobs(tmp_path, ["a.md", "hungry-b.md", "c.md"])
    results = list(_parse_all(jobs, 1, parse=ingest_worker.hungry_on_marked, memory_bytes=1536 * 2**20))
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert [s.path for s in skipped] == ["hungry-b.md"]
    assert "too large to read in memory" in skipped[0].reason and "--worker-memory-mb" in skipped[0].reason
    assert skipped[0].passing
    assert sorted(r.document.doc_id for r in results if isinstance(r, ParsedDocument)) == ["a.md", "c.md"]


def test_rebuild_over_a_damaged_index(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _ingest(corpus, index)
    (index / "CURRENT").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        _ingest(corpus, index)
    report = _ingest(corpus, index, rebuild=True)
    assert IndexStore(index).count("chunks") == report.chunks
    generation = current_generation(index)
    assert generation is not None
    shutil.rmtree(index / generation)
    with pytest.raises(IndexMissingError, match="--rebuild"):
        _ingest(corpus, index)
    _ingest(corpus, index, rebuild=True)
    assert IndexStore(index).count("chunks") == report.chunks


def test_unlistable_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that cannot be listed (permissions) is reported, and the rest is indexed."""
    from qa.ingest import discover

    corpus = tmp_path / "corpus"
    (corpus / "private").mkdir(parents=True)
    (corpus / "ok.md").write_text("# Fine\n\nReadable.\n", encoding="utf-8")
    (corpus / "private" / "hidden.md").write_text("# Secret\n\nUnreadable.\n", encoding="utf-8")
    real = os.scandir

    def refusing(path: object = "."):
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", refusing)
    found, skipped = discover(corpus)
    assert [rel for _, rel in found] == ["ok.md"]
    assert [(s.path, "permissions" in s.reason) for s in skipped] == [("private", True)]


def test_document_keys_round_trip_and_decide_what_is_kept() -> None:
    from qa.ingest import DocKey

    sha = "ab" * 32
    plain, cut = DocKey(sha, "-"), DocKey(sha, "0123456789abcdef", (100, 2000))
    for key in (plain, cut):
        assert DocKey.parse(str(key)) == key
    assert str(cut) == f"{sha}:0123456789abcdef|limits:100:2000"
    assert DocKey.parse("not a key") is None and DocKey.parse(f"{sha}:-|limits:x:1") is None
    assert plain.still_current(DocKey(sha, "-"), (5000, 20_000_000))
    assert not plain.still_current(DocKey("cd" * 32, "-"), (5000, 20_000_000))  # bytes changed
    assert not plain.still_current(DocKey(sha, "0123456789abcdef"), (5000, 20_000_000))  # catalogue entry changed
    now = DocKey(sha, "0123456789abcdef")
    assert cut.still_current(now, (100, 2000)) and not cut.still_current(now, (100, 5000))  # limits raised


def _remove_tree(top: Path) -> None:
    """Delete a folder tree without recursion (shutil.rmtree, and pytest's clean-up of old temporary
    folders, recurse once per level and fail on a tree 1,000 deep)."""
    order: list[str] = []
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        order.append(folder)
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
    for folder in reversed(order):
        os.rmdir(folder)


@pytest.fixture
def deep_tmp() -> Iterator[Path]:
    """A temporary folder outside pytest's own, emptied without recursion when the test ends."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="qa-deep-"))
    try:
        yield top
    finally:
        _remove_tree(top)


def test_folders_nested_a_thousand_deep_are_named_and_the_rest_indexed(deep_tmp: Path) -> None:
    """No RecursionError: folders past the depth limit are skipped and named; files above it are indexed."""
    from qa.ingest import MAX_DEPTH, discover

    tmp_path = deep_tmp
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "top.md").write_text("# Top\n\nKinship care kept children with family.\n", encoding="utf-8")
    deep = corpus
    for _ in range(1000):  # one level at a time: Path.mkdir(parents=True) itself recurses once per level
        deep = deep / "d"
        deep.mkdir()
    (deep / "bottom.md").write_text("# Bottom\n\nNever searched.\n", encoding="utf-8")
    allowed = corpus.joinpath(*["d"] * MAX_DEPTH)
    (allowed / "lowest.md").write_text("# Lowest\n\nStill searched.\n", encoding="utf-8")
    (allowed / "sources.csv").write_text("path,title\nlowest.md,The lowest note\n", encoding="utf-8")

    found, skipped = discover(corpus)
    lowest = "/".join(["d"] * MAX_DEPTH + ["lowest.md"])
    assert [rel for _, rel in found] == ["top.md", lowest]
    too_deep = "/".join(["d"] * (MAX_DEPTH + 1))
    assert [s.path for s in skipped] == [too_deep]
    assert f"more than {MAX_DEPTH} folders deep" in skipped[0].reason

    report = _ingest(corpus, tmp_path / "index")
    assert sorted(report.new_or_changed) == [lowest, "top.md"]
    assert [s.path for s in report.skipped] == [too_deep]
    assert IndexStore(tmp_path / "index").documents[lowest].title == "The lowest note"  # its sources.csv is read


def test_folder_walk_order_and_hidden_folders(tmp_path: Path) -> None:
    """Files come folder by folder, top-down in name order; hidden folders and sources.csv are not documents."""
    from qa.ingest import discover

    corpus = tmp_path / "corpus"
    for rel in ("b.md", "a/z.md", "a/b/c.md", "a.md", ".hidden/x.md", "a/.h/y.md", "c/sources.csv", "c/d.txt"):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text("# T\n\ntext\n", encoding="utf-8")
    found, skipped = discover(corpus)
    assert [rel for _, rel in found] == ["a.md", "b.md", "a/z.md", "a/b/c.md", "c/d.txt"]
    assert skipped == []


def _one_word_corpus(folder: Path, chars: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "one-word.md").write_text("a" * chars, encoding="utf-8")
    (folder / "good.md").write_text("# Good\n\nFamily group conferences helped.\n", encoding="utf-8")
    return folder


def test_a_ten_megabyte_one_word_file_is_indexed_up_to_the_chunk_cap_and_named(tmp_path: Path) -> None:
    """The cap is a count, checked before embedding: the outcome is the same in-process and in a worker."""
    corpus = _one_word_corpus(tmp_path / "corpus", 10_000_000)
    outcomes = []
    for n, workers in enumerate((0, 1)):
        index = tmp_path / f"index-{n}"
        report = _ingest(corpus, index, settings=IngestSettings(workers=workers, max_chunks=50))
        assert sorted(report.new_or_changed) == ["good.md", "one-word.md"] and report.skipped == ()
        notes = [note for note in report.notes if note.startswith("one-word.md: ")]
        assert len(notes) == 1 and "only the first 50 chunks were indexed" in notes[0] and "--max-chunks" in notes[0]
        store = IndexStore(index)
        chunks = [c for _, c in store.doc_chunks("one-word.md")]
        assert len(chunks) == 50 and report.embedded_chunks == 50 + len(store.doc_chunks("good.md"))
        last = chunks[-1].page
        assert f"up to page {last:,} of " in notes[0]
        assert [p.page for p in store.pages("one-word.md")] == list(range(1, last + 1))
        assert store.documents["one-word.md"].n_pages == last
        outcomes.append((notes[0], [(c.page, c.start, c.end) for c in chunks]))
    assert outcomes[0] == outcomes[1]


def test_the_chunk_cap_keeps_the_first_chunks_and_stops_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Capped chunks are the start of the uncapped ones; a file ten times longer costs no more to cut."""
    import importlib

    from qa.chunking import approximate_tokens

    ingest_module = importlib.import_module("qa.ingest")  # the package's ``ingest`` is the function

    calls = {"n": 0}

    def counting(_: str | None):  # the token counter, counting its calls
        def count(text: str) -> int:
            calls["n"] += 1
            return approximate_tokens(text)
        return count

    monkeypatch.setattr(ingest_module, "token_counter", counting)
    small = tmp_path / "small.md"
    small.write_text("a" * 30_000, encoding="utf-8")
    large = tmp_path / "large.md"
    large.write_text("a" * 300_000, encoding="utf-8")
    job = ParseJob(str(small), "small.md", None, ChunkSettings(), None, 5000, 20_000_000, 40)
    capped = ingest_module.parse(job)
    small_calls, calls["n"] = calls["n"], 0
    whole = ingest_module.parse(ParseJob(str(small), "small.md", None, ChunkSettings(), None, 5000, 20_000_000, 10_000))
    assert len(capped.chunks) == 40 < len(whole.chunks) and capped.chunks == whole.chunks[:40]
    assert capped.truncated and not whole.truncated
    calls["n"] = 0
    ingest_module.parse(ParseJob(str(large), "large.md", None, ChunkSettings(), None, 5000, 20_000_000, 40))
    assert calls["n"] == small_calls  # the work stops at the cap, however long the file


def test_a_capped_document_is_kept_until_the_cap_is_raised(tmp_path: Path) -> None:
    corpus = _one_word_corpus(tmp_path / "corpus", 100_000)
    index = tmp_path / "index"
    _ingest(corpus, index, settings=IngestSettings(workers=0, max_chunks=30))
    again = _ingest(corpus, index, settings=IngestSettings(workers=0, max_chunks=30))
    assert again.new_or_changed == () and again.embedded_chunks == 0
    raised = _ingest(corpus, index, settings=IngestSettings(workers=0, max_chunks=60))
    assert raised.new_or_changed == ("one-word.md",)
    assert len(IndexStore(index).doc_chunks("one-word.md")) == 60


def test_document_keys_with_the_chunk_cap_round_trip() -> None:
    from qa.ingest import DocKey

    sha = "ab" * 32
    cut = DocKey(sha, "-", (5000, 20_000_000, 10_000))
    assert str(cut) == f"{sha}:-|limits:5000:20000000:10000" and DocKey.parse(str(cut)) == cut
    older = DocKey.parse(f"{sha}:-|limits:100:2000")  # written before the chunk cap: read again once
    assert older is not None and not older.still_current(DocKey(sha, "-"), (100, 2000, 10_000))


def test_qa_ingest_max_chunks_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qa.cli import main

    corpus = _one_word_corpus(tmp_path / "corpus", 100_000)
    assert main(["ingest", str(corpus), "--index", str(tmp_path / "index"), "--workers", "0", "--max-chunks", "25"],
                embedder=FakeEmbedder()) == 0
    out = capsys.readouterr().out
    assert "note: one-word.md: only the first 25 chunks were indexed" in out
    with pytest.raises(SystemExit) as exited:
        main(["ingest", str(corpus), "--max-chunks", "0"], embedder=FakeEmbedder())
    assert exited.value.code == 2 and "--max-chunks" in capsys.readouterr().err


def test_an_ingest_deletes_served_copies_of_documents_it_drops_or_replaces(tmp_path: Path) -> None:
    """With the app stopped, the copies under static/ of a removed and a changed document go with the ingest."""
    from qa.ui import publish_source, published_name

    corpus = build_corpus(tmp_path / "corpus", n_docs=3)
    names = sorted(p.name for p in corpus.iterdir() if p.suffix in (".pdf", ".md", ".txt"))
    removed, changed, kept = names[0], names[1], names[2]
    index, static = tmp_path / "index", tmp_path / "static"
    settings = IngestSettings(workers=0, static_dir=static)
    _ingest(corpus, index, settings=settings)
    store = IndexStore(index)
    before = {rel: store.documents[rel] for rel in names}
    for rel, document in before.items():  # what the app does when it links to each source
        assert publish_source(document, corpus / rel, static, [p.text for p in store.pages(rel)]) is not None
    store.close()
    copies = {rel: static / published_name(d) for rel, d in before.items()}
    assert all(path.is_file() for path in copies.values())

    (corpus / removed).unlink()
    with (corpus / changed).open("ab") as handle:
        handle.write(b"\n" if not changed.endswith(".pdf") else b"%\n")
    report = _ingest(corpus, index, settings=settings)
    assert report.removed == (removed,) and changed in report.new_or_changed
    assert not copies[removed].exists() and not copies[removed].parent.exists()
    assert not copies[changed].exists()
    assert copies[kept].is_file()  # still the indexed version: still served


def test_an_ingest_without_a_static_folder_touches_no_copies(tmp_path: Path) -> None:
    from qa.ui import publish_source, published_name

    corpus = build_corpus(tmp_path / "corpus", n_docs=2)
    index, static = tmp_path / "index", tmp_path / "static"
    _ingest(corpus, index)
    store = IndexStore(index)
    rel, document = next(iter(store.documents.items()))
    publish_source(document, corpus / rel, static, [p.text for p in store.pages(rel)])
    store.close()
    (corpus / rel).unlink()
    _ingest(corpus, index)
    assert (static / published_name(document)).is_file()


def test_qa_ingest_deletes_the_apps_copies_of_removed_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import qa.ui
    from qa.cli import main

    static = tmp_path / "static"
    monkeypatch.setattr(qa.ui, "STATIC_DIR", static)
    corpus = build_corpus(tmp_path / "corpus", n_docs=2)
    index = tmp_path / "index"
    argv = ["ingest", str(corpus), "--index", str(index), "--workers", "0"]
    assert main(argv, embedder=FakeEmbedder()) == 0
    store = IndexStore(index)
    rel, document = next(iter(store.documents.items()))
    qa.ui.publish_source(document, corpus / rel, static, [p.text for p in store.pages(rel)])
    store.close()
    (corpus / rel).unlink()
    assert main(argv, embedder=FakeEmbedder()) == 0
    assert not (static / qa.ui.published_name(document)).exists()
