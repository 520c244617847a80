"""Ordinary faults and a distrusted index folder: every case a named skip or one line with exit 2.

Each test builds its own inputs (large files are generated on the spot and
deleted with the temporary folder). Faults the test process cannot cause as
root (a mode-000 file is still readable by root) are simulated with
monkeypatch at the same call the real fault would hit; a full disk and a
read-only folder use a small tmpfs when the test may mount one.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from qa import cli
from qa.errors import IndexMismatchError, IndexWriteError, ModelError
from qa.ingest import IngestSettings, ingest
from qa.store import CURRENT, LEXICAL, LOCK, MANIFEST, IndexStore, current_generation

from conftest import FakeEmbedder
from corpora import build_corpus, build_index, npz_declaring, snapshot
from faultkit import (
    SERIAL,
    add_long_note,
    add_special_files,
    control_characters,
    deleted_after_listing,
    error_lines,
    escape_corpus,
    failing_reads,
    flip_vectors,
    index_fault,
    lexical_save_fails,
    link_lock,
    name_model,
    no_network,
    refused_on_open,
    run_cli,
    slow_corpus,
    zero_chunk_store,
)


def _corpus(folder: Path, n_docs: int = 4) -> Path:
    return build_corpus(folder, n_docs=n_docs)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    return build_index(tmp_path, n_docs=4)


def _one_line(err: str) -> str:
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- inputs that used to hang the ingest ------------------------------------------------------


def test_ten_megabyte_word_and_repetitive_files_finish_within_the_parse_limit(tmp_path: Path) -> None:
    """A 10 MB one-word file and a 10 MB repetitive one are indexed or skipped as too slow; the rest is indexed."""
    corpus = slow_corpus(tmp_path / "corpus", ["one-word.md", "repetitive.md"])
    limit = 4.0
    report = ingest(corpus, tmp_path / "index", FakeEmbedder(),
                    settings=IngestSettings(workers=2, parse_timeout=limit))
    store = IndexStore(tmp_path / "index")
    skipped = {s.path: s.reason for s in report.skipped}
    assert "good.md" in store.documents
    for name in ("one-word.md", "repetitive.md"):
        assert (name in store.documents) != (name in skipped), name
        if name in skipped:
            assert skipped[name].startswith(f"took longer than {limit:g} s"), skipped[name]
    # A timeout is a passing reason: kept in the manifest as such, so the next run tries again.
    for name in skipped:
        assert store.manifest.skipped[name][2:] == ["passing"]


def test_a_slow_file_is_stopped_and_the_ingest_goes_on(tmp_path: Path) -> None:
    """With a tiny limit the worker reading a large file is stopped; small files are still indexed."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "slow.md").write_text("a" * 3_000_000, encoding="utf-8")
    for i in range(3):
        (corpus / f"note-{i}.md").write_text(f"# Note {i}\n\nKinship care note {i}.\n", encoding="utf-8")
    # The large file takes seconds to read; a note takes milliseconds, however busy the machine.
    report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=IngestSettings(workers=1, parse_timeout=2))
    assert {s.path: s.reason.split(";")[0] for s in report.skipped} == {"slow.md": "took longer than 2 s to read"}
    assert sorted(IndexStore(tmp_path / "index").documents) == ["note-0.md", "note-1.md", "note-2.md"]


# --- source files: every OS error is a named skip, and passing ones are retried ---------------


def test_unreadable_file_as_a_real_mode_000(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root, where mode 000 is still readable; the monkeypatched test covers it")
    corpus = _corpus(tmp_path / "corpus")
    secret = corpus / "secret.md"
    secret.write_text("# Secret\n\nNot for us.\n", encoding="utf-8")
    secret.chmod(0)
    try:
        report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    finally:
        secret.chmod(0o644)
    assert "permission" in {s.path: s.reason for s in report.skipped}["secret.md"].lower()
    assert report.documents == 4


def test_unreadable_file_is_a_named_skip_and_is_retried(tmp_path: Path) -> None:
    """PermissionError on opening a file (mode 000 for a normal user) skips that file only; fixed, it is read."""
    corpus = _corpus(tmp_path / "corpus")
    (corpus / "secret.md").write_text("# Secret\n\nCaseload notes.\n", encoding="utf-8")
    with refused_on_open("secret.md"):
        report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons == {"secret.md": "cannot be read (Permission denied); check the file and its permissions"}
    assert report.documents == 4
    again = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    assert again.new_or_changed == ("secret.md",) and not again.skipped


def test_permission_error_inside_the_reader_is_a_named_skip(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    with failing_reads(lambda rel: rel.endswith(".md"), errno.EACCES):
        report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    md = [s for s in report.skipped if s.path.endswith(".md")]
    assert md and all("Permission denied" in s.reason and s.passing for s in md)
    assert report.documents == 4 - len(md)


def test_file_deleted_between_listing_and_reading(tmp_path: Path) -> None:
    """A file that vanishes after discovery is named; the rest is indexed; it is not remembered as bad."""
    corpus = _corpus(tmp_path / "corpus")
    doomed = corpus / "doomed.md"
    doomed.write_text("# Doomed\n\nShort-lived note.\n", encoding="utf-8")
    with deleted_after_listing(doomed):
        report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    assert {s.path: s.reason.split(";")[0] for s in report.skipped} == {"doomed.md": "cannot be read (No such file or directory)"}
    assert report.documents == 4


def test_a_file_that_vanished_mid_read_is_read_next_time(tmp_path: Path) -> None:
    """A passing failure (here: gone while read) is not sticky: unchanged bytes are read again next run."""
    corpus = _corpus(tmp_path / "corpus")
    with failing_reads(lambda rel: rel.startswith("notes-"), errno.ENOENT):
        first = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    flaky = sorted(s.path for s in first.skipped)
    assert flaky == ["notes-03-caseloads.md"]
    second = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    assert second.new_or_changed == tuple(flaky) and not second.skipped
    assert "already up to date" not in str(second)


def test_a_lasting_skip_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    (corpus / "empty.pdf").write_bytes(b"")
    first = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=SERIAL)
    assert [s.path for s in first.skipped] == ["empty.pdf"] and not first.skipped[0].passing
    embedder = FakeEmbedder()
    second = ingest(corpus, tmp_path / "index", embedder, settings=SERIAL)
    assert [s.path for s in second.skipped] == ["empty.pdf"] and embedder.texts_embedded == 0


def test_only_regular_files_under_the_size_cap_are_read(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    add_special_files(corpus)  # a FIFO pipe.pdf and a sparse big.txt: 3 MB on paper, nothing on disk
    report = ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=IngestSettings(workers=0, max_file_mb=2))
    reasons = {s.path: s.reason for s in report.skipped}
    assert "not a regular file" in reasons["pipe.pdf"]
    assert "larger than 2 MB" in reasons["big.txt"] and "--max-file-mb" in reasons["big.txt"]
    assert report.documents == 4


# --- the index folder: one line, exit 2, the old index intact ---------------------------------


def test_read_only_index_folder_gives_one_line(tmp_path: Path) -> None:
    fault = index_fault(tmp_path, "read-only")  # a tmpfs remounted read-only, else creating the new generation is refused
    line = _one_line(fault.err)
    assert fault.code == 2 and "Read-only file system" in line and "writable" in line and "--index" in line
    assert fault.intact


def test_full_disk_gives_one_line(tmp_path: Path) -> None:
    fault = index_fault(tmp_path, "full-disk")  # a tmpfs filled to the last block, else saving the lexical arrays hits ENOSPC
    line = _one_line(fault.err)
    assert fault.code == 2 and ("No space" in line or "full" in line) and "free some disk space" in line
    assert fault.intact
    assert not fault.leftovers


def test_lexical_save_hitting_enospc_is_an_index_write_error(built: tuple[Path, Path]) -> None:
    corpus, index = built
    before = snapshot(index)
    add_long_note(corpus)
    with lexical_save_fails(), pytest.raises(IndexWriteError, match="No space left on device.*free some disk space"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert snapshot(index) == before


def test_damaged_chunk_store_is_refused_by_ask_info_and_ingest(built: tuple[Path, Path]) -> None:
    corpus, index = built
    zero_chunk_store(index)  # a stretch of the second page
    for argv in (["ask", "what helped families?", "--index", str(index)], ["info", "--index", str(index)]):
        code, out, err = run_cli(argv)
        line = _one_line(err)
        assert code == 2 and "chunks.sqlite" in line and "--rebuild" in line and not out
    with pytest.raises(IndexMismatchError, match="checksum"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)


def test_flipped_bytes_in_the_vectors_are_refused(built: tuple[Path, Path]) -> None:
    corpus, index = built
    flip_vectors(index)  # the last 64 bytes
    with pytest.raises(IndexMismatchError, match=r"vectors\.faiss does not match the checksum.*--rebuild"):
        IndexStore(index)


def test_an_index_without_checksums_is_refused(built: tuple[Path, Path]) -> None:
    corpus, index = built
    manifest = index / str(current_generation(index)) / MANIFEST
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["files"] = {}
    manifest.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="no checksum.*--rebuild"):
        IndexStore(index)


def test_a_manifest_naming_a_hub_model_makes_no_network_call(built: tuple[Path, Path]) -> None:
    """The model an index names is loaded only when bundled or local; never fetched."""
    from qa.engine import Engine

    corpus, index = built
    name_model(index, "someone/not-a-local-model")
    with no_network() as calls, pytest.raises(ModelError, match="never downloaded.*--model someone/not-a-local-model"):
        Engine(index)
    assert calls == []


def test_lock_symlink_is_not_followed_or_truncated(built: tuple[Path, Path]) -> None:
    corpus, index = built
    victim = index.parent / "victim.txt"
    victim.write_text("precious contents\n", encoding="utf-8")
    link_lock(index, victim)
    with pytest.raises(IndexWriteError, match="symbolic link"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert victim.read_text(encoding="utf-8") == "precious contents\n"


def test_lock_file_is_not_truncated(built: tuple[Path, Path]) -> None:
    corpus, index = built
    lock = index / LOCK
    lock.write_text("x" * 40, encoding="utf-8")
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    text = lock.read_text(encoding="utf-8")
    assert len(text) == 40 and text.split()[0] == str(os.getpid())


def test_lexical_arrays_declaring_a_billion_elements_are_refused_before_loading(tmp_path: Path) -> None:
    from qa.lexical import Impacts, check_sizes

    path = tmp_path / LEXICAL
    npz_declaring(path, 2)
    assert Impacts.load(path).rows == 2  # the sound file loads
    npz_declaring(path, 10**9)
    with pytest.raises(ValueError, match="declares 4000000000 bytes"):
        check_sizes(path)
    with pytest.raises(ValueError, match="not a lexical index"):
        Impacts.load(path)


def test_lexical_rows_must_match_the_manifest(tmp_path: Path) -> None:
    from qa.lexical import Impacts

    path = tmp_path / LEXICAL
    npz_declaring(path, 2)
    with pytest.raises(ValueError, match="manifest says 5"):
        Impacts.load(path, expected_rows=5)


def test_every_file_of_the_bundled_model_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.embed

    try:
        model_dir = qa.embed.bundled_model_dir()
    except ModelError as exc:
        pytest.skip(f"bundled model not installed: {exc}")
    assert {"tokenizer.json", "vocab.txt", "config.json", "modules.json"} <= set(qa.embed.BUNDLED_FILES)
    assert qa.embed.verify_bundled(model_dir) == qa.embed.BUNDLED_SHA256
    monkeypatch.setitem(qa.embed.BUNDLED_FILES, "tokenizer.json", "0" * 64)
    with pytest.raises(ModelError, match="tokenizer.json has sha256"):
        qa.embed.verify_bundled(model_dir)


def test_garbled_current_keeps_every_generation(built: tuple[Path, Path]) -> None:
    corpus, index = built
    name = current_generation(index)
    (index / CURRENT).write_bytes(b"\x00\x00")
    with pytest.raises(IndexMismatchError, match="damaged"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert (index / str(name)).is_dir()
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL, rebuild=True)
    assert current_generation(index) != name


# --- untrusted text never reaches the terminal ------------------------------------------------


def test_control_characters_in_metadata_never_reach_stdout(tmp_path: Path) -> None:
    corpus = escape_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    docs = IndexStore(index).documents
    assert docs["report.pdf"].title == "Evaluation ]0;owned [2J report"  # cleaned where it entered the records
    outputs = []
    for argv in (["info"], ["info", "--json"], ["ask", "kinship carers respite"], ["ask", "--json", "family conferences"],
                 ["ingest", str(corpus), "--workers", "0"]):
        code, out, err = run_cli([*argv, "--index", str(index)])
        assert code == 0, err
        outputs.append(out + err)
    for text in outputs:
        bad = sorted({repr(c) for c in control_characters(text)})
        assert not bad, bad
    assert "Evaluation ]0;owned [2J report" in outputs[0]


def test_cli_filter_removes_escapes_from_any_printed_text() -> None:
    assert cli.safe("a\x1b[2Jb\rc\nd\te\x9bf\u202eg") == "a?[2Jb?c\nd\te?f?g"
    assert json.loads(cli.safe_json(json.dumps({"t": "x\x9by\u202e"}, ensure_ascii=False))) == {"t": "x\x9by\u202e"}
    assert "\x9b" not in cli.safe_json(json.dumps({"t": "x\x9by"}, ensure_ascii=False))
