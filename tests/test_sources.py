"""Tests of the shared ``sources.csv`` reader and writer and the year parser."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from qa.errors import DocumentError
from qa.ingest import read_catalogue
from qa.records import DocMeta
from qa.sources import COLUMNS, meta_from_row, parse_year, read_regular, read_sources, write_sources


@pytest.mark.parametrize(
    ("text", "year"),
    [("2017", 2017), (" 2019 ", 2019), ("2017-07-20T09:30:00.000+01:00", 2017), ("20xx", None), ("", None),
     ("12345", None), ("0042", None), ("n.d.", None), (None, None), (2017, None)],
)
def test_parse_year(text: object, year: int | None) -> None:
    assert parse_year(text) == year


def test_roundtrip_keeps_extra_columns_and_order(tmp_path: Path) -> None:
    path = tmp_path / "sources.csv"
    path.write_text("\ufeffpath,title,notes\nkeep.pdf,Keep,hand note\nold.pdf,Old,x\n,No path,y\n", encoding="utf-8")
    rows, columns = read_sources(path)
    assert columns == [*COLUMNS, "notes"]
    assert list(rows) == ["keep.pdf", "old.pdf"]
    rows["old.pdf"]["title"] = 'New, "quoted"\ntitle'
    rows["n.pdf"] = {"path": "n.pdf", "title": "N"}
    write_sources(path, rows, columns)
    again, _ = read_sources(path)
    assert list(again) == ["keep.pdf", "old.pdf", "n.pdf"]
    assert again["keep.pdf"]["notes"] == "hand note" and again["old.pdf"]["notes"] == "x"
    assert again["old.pdf"]["title"] == 'New, "quoted"\ntitle'
    assert [p.name for p in tmp_path.iterdir()] == ["sources.csv"]  # no temp file left


def test_missing_file_is_an_empty_catalogue(tmp_path: Path) -> None:
    assert read_sources(tmp_path / "sources.csv") == ({}, list(COLUMNS))


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"file,title\na.pdf,A\n", "no 'path' column"), (b"path,title\n\xff\xfe\x00bad", "UTF-8")],
)
def test_unusable_files_raise_with_the_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "sources.csv"
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=reason):
        read_sources(path)


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "sources.csv"
    path.write_bytes(b"path,title\n" + b"a.pdf,A\n" * 100)
    with pytest.raises(DocumentError, match="larger than 100 bytes"):
        read_sources(path, max_bytes=100)
    assert read_regular(path, max_bytes=10_000).startswith(b"path,title")


@pytest.mark.timeout(60)  # a blocking open of the FIFO would hang here without it
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "sources.csv")
    with pytest.raises(DocumentError, match="not a regular file"):
        read_sources(tmp_path / "sources.csv")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this platform")
def test_link_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sources.csv").symlink_to("/dev/zero")
    with pytest.raises(DocumentError, match="not a regular file"):
        read_sources(tmp_path / "sources.csv")


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_ingest_catalogue_skips_hostile_files_with_a_logged_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = tmp_path / "corpus"
    for sub in ("fifo", "zero", "good"):
        (corpus / sub).mkdir(parents=True)
    os.mkfifo(corpus / "fifo" / "sources.csv")
    (corpus / "zero" / "sources.csv").symlink_to("/dev/zero")
    (corpus / "good" / "sources.csv").write_text("path,title,year\nr.pdf,Report,2018\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        catalogue = read_catalogue(corpus)
    assert catalogue == {"good/r.pdf": DocMeta(title="Report", year=2018)}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "fifo/sources.csv" in warned and "zero/sources.csv" in warned and "not a regular file" in warned


def test_meta_from_row_strips_and_parses() -> None:
    meta = meta_from_row({"path": "a.pdf", "title": " T ", "year": "2016-01", "publisher": "DfE", "sha256": "x"})
    assert meta == DocMeta(title="T", year=2016, publisher="DfE")


def test_written_catalogue_takes_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_sources(tmp_path / "sources.csv", {"a.pdf": {"path": "a.pdf"}})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sources.csv").stat().st_mode) == 0o644
