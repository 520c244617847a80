"""Hostile and broken inputs: every ingest finishes, every bad file is named with a fix.

The hostile corpus (``tests/hostile.py``) is built once per module and ingested
in-process and with worker processes; each case then checks its own outcome.
Real broken files from ``../shared/corpus-bad`` are added when present.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from qa.errors import DocumentError
from qa.ingest import IngestSettings, discover, ingest
from qa.readers import read_document
from qa.records import IngestReport
from qa.store import IndexStore

from conftest import FakeEmbedder, make_pdf
from hostile import CASE_PATHS, MAX_CHARS, MAX_PAGES, Case, has_aes, make_hostile_corpus

ROOT = Path(__file__).resolve().parent.parent


class Built:
    """One hostile corpus ingested once: report, store, and the expectations."""

    def __init__(self, corpus: Path, index: Path, cases: list[Case], report: IngestReport, log: str) -> None:
        self.corpus = corpus
        self.index = index
        self.cases = {case.path: case for case in cases}
        self.report = report
        self.store = IndexStore(index)
        self.skipped = {s.path: s.reason for s in report.skipped}
        self.log = log


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Built:
    import logging

    root = tmp_path_factory.mktemp("hostile")
    cases = make_hostile_corpus(root / "corpus")
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logging.getLogger("qa").addHandler(handler)
    try:
        report = ingest(root / "corpus", root / "index", FakeEmbedder(),
                        settings=IngestSettings(workers=0, max_pages=MAX_PAGES, max_chars=MAX_CHARS))
    finally:
        logging.getLogger("qa").removeHandler(handler)
    return Built(root / "corpus", root / "index", cases, report, "\n".join(records))


@pytest.mark.parametrize("path", CASE_PATHS)
def test_hostile_case(hostile: Built, path: str) -> None:
    case = hostile.cases[path]
    if case.needs:
        pytest.skip(f"needs {case.needs}")
    documents = hostile.store.documents
    if case.expect == "skipped":
        assert case.path in hostile.skipped, f"{case.path!r} should be named in the skip list"
        reason = hostile.skipped[case.path].lower()
        for word in case.reason:
            assert word in reason, f"reason for {case.path!r} should mention {word!r}: {reason}"
        assert case.path not in documents
    elif case.expect == "ignored":
        assert case.path not in documents and case.path not in hostile.skipped
    else:
        assert case.path not in hostile.skipped, hostile.skipped.get(case.path)
        assert case.path in documents
        pages = hostile.store.pages(case.path)
        assert case.text in "\n".join(p.text for p in pages)
        if case.pages is not None:
            assert len(pages) == case.pages
        for number, page in enumerate(pages, start=1):
            if number in case.missing_pages:
                assert page.text == "", f"page {number} should be left out"
            elif case.expect == "partial":
                assert page.text.strip()


def test_case_list_matches_the_corpus(hostile: Built) -> None:
    assert tuple(hostile.cases) == CASE_PATHS


def test_hostile_ingest_indexes_the_good_documents(hostile: Built) -> None:
    assert {"good-report.pdf", "good-notes.md"} <= set(hostile.store.documents)
    assert hostile.report.documents == len(hostile.store.documents)
    assert hostile.report.chunks == hostile.store.count("chunks") > 0


def test_every_skip_is_expected_and_actionable(hostile: Built) -> None:
    expected = {c.path for c in hostile.cases.values() if c.expect == "skipped"}
    expected |= {p for c in hostile.cases.values() for p in c.extra_paths}
    assert set(hostile.skipped) == expected
    for path, reason in hostile.skipped.items():
        # Every reason says what to do: a verb of action a user can follow.
        fix = r"\b(run|download|replace|save|rename|convert|fix|use|install|check|split|lower|raise)\b"
        assert re.search(fix, reason), (path, reason)


def test_truncation_and_lost_pages_are_logged(hostile: Built) -> None:
    assert "thousands-of-pages.pdf: only the first 100 of 3,000 pages were indexed (raise --max-pages" in hostile.log
    assert f"huge.txt: only the first {MAX_CHARS:,} characters were indexed (raise --max-chars" in hostile.log
    assert "page-raises.pdf: 1 page(s) could not be read and were left out (2)" in hostile.log


def test_large_text_file_is_cut_at_the_limit(hostile: Built) -> None:
    pages = hostile.store.pages("huge.txt")
    assert len(pages) > 1  # a text document is cut into pages of a few thousand characters
    kept = sum(len(page.text) for page in pages)
    assert kept <= MAX_CHARS
    assert kept > MAX_CHARS * 0.99  # cleaning only trims whitespace at the cuts


def test_bad_utf8_keeps_good_characters(hostile: Built) -> None:
    text = hostile.store.pages("invalid-utf8.txt")[0].text
    assert "\ufffd" in text and "café" in text and "â€" not in text


def test_outside_file_is_never_read(hostile: Built) -> None:
    everything = "\n".join(c.text for c in hostile.store.chunks(range(hostile.store.count("chunks"))).values())
    assert "outside the corpus that must not be read" not in everything


def test_worker_processes_give_the_same_outcome(hostile: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The same corpus through two spawn workers: same documents, chunks, skip reasons and warnings."""
    with caplog.at_level("WARNING", logger="qa"):
        report = ingest(hostile.corpus, tmp_path / "index", FakeEmbedder(),
                        settings=IngestSettings(workers=2, max_pages=MAX_PAGES, max_chars=MAX_CHARS))
    assert "page-raises.pdf: 1 page(s) could not be read and were left out (2)" in caplog.text
    assert "thousands-of-pages.pdf: only the first 100 of 3,000 pages" in caplog.text
    store = IndexStore(tmp_path / "index")
    assert {s.path: s.reason for s in report.skipped} == hostile.skipped
    assert store.documents == hostile.store.documents
    n = store.count("chunks")
    assert n == hostile.store.count("chunks")
    assert store.chunks(range(n)) == hostile.store.chunks(range(n))


def test_following_symlinks_reads_links_and_stops_at_loops(hostile: Built, tmp_path: Path) -> None:
    report = ingest(hostile.corpus, tmp_path / "index", FakeEmbedder(),
                    settings=IngestSettings(workers=0, max_pages=MAX_PAGES, max_chars=MAX_CHARS, follow_symlinks=True))
    store = IndexStore(tmp_path / "index")
    skipped = {s.path: s.reason for s in report.skipped}
    assert "link-outside.pdf" in store.documents  # asked for: followed
    assert "linked-folder/secret.pdf" in store.documents
    loops = [p for p, r in skipped.items() if "loop" in r]
    assert "loop-a.pdf" in loops
    assert any(p.startswith("loop/again") for p in loops)


def test_encrypted_aes_with_empty_password_is_read(tmp_path: Path) -> None:
    if not has_aes():
        pytest.skip("AES needs the `cryptography` package")
    from hostile import encrypted_pdf

    good = make_pdf(tmp_path / "good.pdf", ["Restricted-editing PDFs are common in government publishing."])
    path = tmp_path / "aes.pdf"
    path.write_bytes(encrypted_pdf(good, "", "AES-256"))
    raw = read_document(path, "aes.pdf")
    assert "Restricted-editing" in raw.pages[0].text
    path.write_bytes(encrypted_pdf(good, "secret", "AES-256"))
    with pytest.raises(DocumentError, match="password-protected"):
        read_document(path, "aes.pdf")


def test_aes_without_cryptography_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When pypdf cannot decrypt AES for lack of a package, the reason says which to install."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    good = make_pdf(tmp_path / "good.pdf", ["Some text that is long enough to count as text."])
    from hostile import encrypted_pdf

    path = tmp_path / "enc.pdf"
    path.write_bytes(encrypted_pdf(good, ""))

    def no_aes(self: PdfReader, password: str) -> None:
        raise DependencyError("cryptography is required for AES algorithm")

    monkeypatch.setattr(PdfReader, "decrypt", no_aes)
    with pytest.raises(DocumentError, match=r"pip install cryptography"):
        read_document(path, "enc.pdf")


def test_page_that_raises_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any exception from pypdf on one page loses that page only."""
    from pypdf import PageObject

    path = make_pdf(tmp_path / "three.pdf", [
        "First page text about fostering and adoption services. " * 3,
        "Second page text that pypdf will fail on in this test. " * 3,
        "Third page text about leaving care and personal advisers. " * 3,
    ])
    original = PageObject.extract_text

    def flaky(self: PageObject, *args: Any, **kwargs: Any) -> str:  # passed through as given
        if "Second page" in original(self):
            raise ValueError("simulated parser bug")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    raw = read_document(path, "three.pdf")
    assert [bool(p.text.strip()) for p in raw.pages] == [True, False, True]
    assert "leaving care" in raw.pages[2].text


def test_mostly_scanned_pdf_is_skipped_with_ocr_advice(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    from hostile import image_only_pdf

    scanned = tmp_path / "scan.pdf"
    scanned.write_bytes(image_only_pdf())
    text = make_pdf(tmp_path / "text.pdf", ["A cover page with some real words on it for the reader."], footer=None)
    writer = PdfWriter()
    writer.append(str(text))
    for _ in range(3):
        writer.append(str(scanned))
    with (tmp_path / "mixed.pdf").open("wb") as handle:
        writer.write(handle)
    assert len(PdfReader(str(tmp_path / "mixed.pdf")).pages) == 7
    with pytest.raises(DocumentError) as info:
        read_document(tmp_path / "mixed.pdf", "mixed.pdf")
    assert "1 of 7 pages" in info.value.reason and "OCR" in info.value.reason


def test_shared_bad_files_are_skipped_with_reasons(shared_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(shared_dir / "corpus-bad", corpus)
    make_pdf(corpus / "good.pdf", ["Practice leaders described the Innovation Programme projects in detail."])
    report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=IngestSettings(workers=0))
    reasons = {s.path: s.reason for s in report.skipped}
    assert report.documents == 1 and report.new_or_changed == ("good.pdf",)
    assert "OCR" in reasons["scanned-public-domain-multipage-ocrmypdf.pdf"]
    assert "OCR" in reasons["ofsted-north-yorkshire-ilacs-2018-image-only.pdf"]
    assert "HTML" in reasons["ofsted-blackpool-2012-html-not-pdf.pdf"]
    assert "download" in reasons["ofsted-blackpool-2012-html-not-pdf.pdf"]


def test_non_utf8_folder_name_is_skipped(tmp_path: Path) -> None:
    import os

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    os.mkdir(os.fsencode(corpus) + b"/folder-\xfe")
    (corpus / "ok.md").write_text("# Fine\n\nA readable note.\n", encoding="utf-8")
    found, skipped = discover(corpus)
    assert [rel for _, rel in found] == ["ok.md"]
    assert skipped and "rename the folder" in skipped[0].reason


def test_memory_stays_bounded_for_a_huge_text_file(tmp_path: Path) -> None:
    """Reading a 100 MB text file with a 1M-character cap holds about the cap, not the file."""
    import subprocess

    big = tmp_path / "big.txt"
    block = ("Case notes recorded each visit and the child's views. " * 20 + "\n").encode()
    with big.open("wb") as handle:
        for _ in range(100_000_000 // len(block)):
            handle.write(block)
    # The peak is VmHWM, this process's own high-water mark. ru_maxrss would start at the
    # test process's peak (Linux carries it across fork and exec), which after the real model
    # has loaded is larger than anything this child does, so the growth would read 0.
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from qa.readers import read_document\n"
        "def peak():\n"
        "    try:\n"
        "        return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1])\n"
        "    except (OSError, StopIteration):\n"
        "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "before = peak()\n"
        "raw = read_document(Path(sys.argv[1]), 'big.txt', max_chars=int(sys.argv[2]))\n"
        "after = peak()\n"
        "print(sum(len(p.text) for p in raw.pages), (after - before) // 1024, bool(raw.truncated))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(big), "1000000"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    chars, grew_mb, truncated = out.stdout.split()
    assert int(chars) == 1_000_000 and truncated == "True"
    assert int(grew_mb) < 40, f"peak memory grew by {grew_mb} MB reading a 100 MB file"


# --- security ----------------------------------------------------------------------------------

_FORBIDDEN_NAMES = {"pickle", "cPickle", "dill", "shelve", "marshal", "eval", "exec", "joblib"}


def _code_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every identifier in a Python file's code (not its strings or comments)."""
    import tokenize

    with path.open("rb") as handle:
        return [(tok.start[0], tok.string) for tok in tokenize.tokenize(handle.readline) if tok.type == tokenize.NAME]


def test_package_never_unpickles_or_evaluates() -> None:
    """No pickle (or pickle-like loader), eval or exec anywhere in the package's code."""
    offenders = []
    for path in sorted((ROOT / "qa").rglob("*.py")):
        for line, name in _code_names(path):
            if name in _FORBIDDEN_NAMES:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
        text = path.read_text(encoding="utf-8")
        if re.search(r"allow_pickle\s*=\s*True|weights_only\s*=\s*False", text):
            offenders.append(f"{path.relative_to(ROOT)}: allow_pickle=True / weights_only=False")
    assert not offenders, offenders


def test_index_files_are_only_json_sqlite_faiss_and_plain_arrays(tmp_path: Path) -> None:
    from corpora import build_corpus

    corpus = build_corpus(tmp_path / "corpus", n_docs=3)
    ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=IngestSettings(workers=0))
    store = IndexStore(tmp_path / "index")
    files = sorted(p.name for p in store.path.iterdir())
    assert files == ["chunks.sqlite", "lexical.npz", "manifest.json", "units.npy", "vectors.faiss"]
    import numpy as np

    with np.load(store.path / "lexical.npz", allow_pickle=False) as arrays:  # raises if any array needs pickle
        assert all(arrays[name].dtype != object for name in arrays.files)
    units = np.load(store.path / "units.npy", allow_pickle=False)
    assert units.dtype == np.float16 and units.shape[1] == store.manifest.dimension
    assert (store.path / "chunks.sqlite").read_bytes().startswith(b"SQLite format 3\x00")
    json_text = (store.path / "manifest.json").read_text(encoding="utf-8")
    assert __import__("json").loads(json_text)["format_version"] >= 1


def test_a_sparse_slide_deck_is_not_taken_for_a_scan(tmp_path: Path) -> None:
    slides = ["Key findings", "Method", "Results for children and families in the pilot areas were positive.", "Next steps"]
    path = make_pdf(tmp_path / "slides.pdf", slides, footer=None)
    raw = read_document(path, "slides.pdf")
    assert [p.text.strip() for p in raw.pages] == slides


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["--year-from", "99999999999999999999"], "--year-from"), (["--year-to", "-1"], "--year-to"),
     (["--year-from", "20x"], "--year-from"), (["--top-k", "0"], "--top-k"), (["--top-k", "-5"], "--top-k"),
     (["--top-k", "100000000"], "--top-k")],
)
def test_out_of_range_year_or_passage_count_is_one_line_exit_2(argv: list[str], named: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything is loaded: no traceback, no silent acceptance."""
    from qa.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["ask", "what helped?", "--index", str(tmp_path / "index"), *argv], embedder=FakeEmbedder())
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("qa ask: ") and named in err and "from" in err and "Traceback" not in err


def test_years_and_passage_counts_in_range_are_taken() -> None:
    from qa.cli import build_parser

    args = build_parser().parse_args(["ask", "q", "--year-from", "2016", "--year-to", "2019", "--top-k", "1"])
    assert (args.year_from, args.year_to, args.top_k) == (2016, 2019, 1)
    assert build_parser().parse_args(["ask", "q"]).top_k == 5


def test_the_app_prunes_copies_of_unindexed_documents_before_it_serves(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """At server start, once the engine is loaded and before the first request, only indexed versions stay."""
    import asyncio
    from concurrent.futures import Future
    from types import SimpleNamespace

    import app
    from qa import ui
    from qa.records import DocMeta, Document

    assert app.STATIC_DIR == ui.STATIC_DIR  # the folder the app serves is the one `qa ingest` cleans
    indexed = Document(doc_id="kept.pdf", meta=DocMeta(title="Kept"), content_hash="a" * 64, kind="pdf", n_pages=1)
    gone = Document(doc_id="gone.pdf", meta=DocMeta(title="Gone"), content_hash="b" * 64, kind="pdf", n_pages=1)
    static = tmp_path / "static"
    for document in (indexed, gone):
        (static / ui.published_name(document)).parent.mkdir(parents=True)
        (static / ui.published_name(document)).write_bytes(b"%PDF-1.4\n")
    engine = SimpleNamespace(documents=lambda: [indexed])
    loaded: Future[object] = Future()
    loaded.set_result(engine)
    loader = SimpleNamespace(future=loaded, engine=lambda: engine)
    monkeypatch.setattr(app.serving, "loader", lambda *_: loader)
    monkeypatch.setattr(app, "static_dir", lambda: static)

    async def start() -> None:
        async with app._load_at_start(None):
            assert (static / ui.published_name(indexed)).is_file()
            assert not (static / ui.published_name(gone)).exists()

    asyncio.run(start())
