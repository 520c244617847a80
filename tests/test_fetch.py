"""Tests of ``qa fetch`` against a local fake of GOV.UK (127.0.0.1 only, no internet).

The fetcher takes its clock and sleep from the caller: these tests pass a fake
clock that records every pause, so nothing here waits on or measures wall time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa import fetch
from qa.cli import main as qa_main
from qa.cli import settings_from
from qa.errors import FetchError
from qa.fetch import Failure, FetchOptions, FetchSummary, configure_parser, fetch_collection, format_summary, run
from qa.fetch.catalogue import (
    LICENCE,
    MAX_NAME,
    Attachment,
    Skip,
    collection_documents,
    normalise_base_path,
    plan_files,
    publication_attachments,
    sanitise_filename,
)
from qa.fetch.http import check_url, is_loopback
from qa.settings import DEFAULT_GOVUK_API
from qa.sources import COLUMNS, write_sources

from govuk_fake import FakeGovUK, Reply, pdf_bytes

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = "/government/collections/csc-innovation"
SMALL = "/government/collections/small"
GOVUK = "https://www.gov.uk"
PDF = (("Content-Type", "application/pdf"),)

# Bodies of the files that should arrive, by the name they should arrive under.
EXPECTED = {
    "alpha-report.pdf": pdf_bytes("alpha report"),
    "Alpha_Annex.pdf": pdf_bytes("alpha annex"),
    "flaky.pdf": pdf_bytes("flaky"),
    "passwd.pdf": pdf_bytes("traversal"),
    "evil_name.pdf": pdf_bytes("newline"),
    "force_-rf.pdf": pdf_bytes("dashes"),
    "Evaluation_resume.pdf": pdf_bytes("unicode"),
    "secret.pdf": pdf_bytes("encoded traversal"),
    "report.pdf": pdf_bytes("delta 1"),
    "report-2.pdf": pdf_bytes("delta 2"),
    "REPORT-3.pdf": pdf_bytes("delta 3"),
}


def _publication(title: str, attachments: list[object], orgs: list[str], published: str) -> dict:  # some malformed
    return {
        "title": title,
        "first_published_at": published,
        "details": {"attachments": attachments},
        "links": {"organisations": [{"title": o} for o in orgs]},
    }


def build_site(srv: FakeGovUK) -> None:
    """The full scenario: good files, failures of every kind, hostile names."""
    o = srv.origin
    srv.add_json(
        "/api/content" + COLLECTION,
        {
            "title": "CSC innovation programme: insights and evaluation",
            "links": {
                "documents": [
                    {"base_path": "/government/publications/alpha", "title": "Alpha"},
                    {"base_path": "/government/publications/beta", "title": "Beta"},
                    {"base_path": "/government/publications/gone", "title": "Gone"},
                    {"base_path": "/government/publications/gamma", "title": "Gamma"},
                    {"base_path": "/government/publications/alpha", "title": "Alpha again"},
                    {"base_path": "https://evil.example.com/x", "title": "Foreign"},
                    {"base_path": "/government/publications/delta", "title": "Delta"},
                ]
            },
        },
    )
    srv.add_json(
        "/api/content/government/publications/alpha",
        _publication(
            "Alpha: evaluation",
            [
                {"title": "Alpha evaluation report", "url": o + "/media/a1/alpha-report.pdf",
                 "content_type": "application/pdf"},
                {"title": "Alpha summary", "url": "/government/publications/alpha/summary",
                 "content_type": "text/html"},
                {"title": "", "url": "/media/a2/Alpha%20Annex.pdf"},  # relative, no type
            ],
            ["Department for Education", "Spring Consortium"],
            "2017-07-20T09:30:00.000+01:00",
        ),
    )
    srv.add_pdf("/media/a1/alpha-report.pdf", EXPECTED["alpha-report.pdf"])
    srv.add_pdf("/media/a2/Alpha Annex.pdf", EXPECTED["Alpha_Annex.pdf"])

    srv.add_json(
        "/api/content/government/publications/beta",
        _publication(
            "Beta: troublesome files",
            [
                {"title": "Missing", "url": o + "/media/b1/missing.pdf", "content_type": "application/pdf"},
                {"title": "Flaky", "url": o + "/media/b2/flaky.pdf", "content_type": "application/pdf"},
                {"title": "Truncated", "url": o + "/media/b3/truncated.pdf", "content_type": "application/pdf"},
                {"title": "Huge", "url": o + "/media/b4/huge.pdf", "content_type": "application/pdf"},
                {"title": "Stream", "url": o + "/media/b5/stream.pdf", "content_type": "application/pdf"},
            ],
            [],
            "2019-03-01T00:00:00Z",
        ),
    )
    srv.add("/media/b1/missing.pdf", Reply(404, b"nope"))
    srv.add("/media/b2/flaky.pdf", Reply(500, b"oops"), Reply(200, EXPECTED["flaky.pdf"], PDF))
    srv.add("/media/b3/truncated.pdf", Reply(200, pdf_bytes("cut")[:20], PDF, content_length=500))
    srv.add("/media/b4/huge.pdf", Reply(200, pdf_bytes("huge", 5000), PDF))
    srv.add("/media/b5/stream.pdf", Reply(200, pdf_bytes("stream", 5000), PDF, content_length=-1))

    srv.add("/api/content/government/publications/gone", Reply(404, b"gone"))

    srv.add_json(
        "/api/content/government/publications/gamma",
        _publication(
            "Gamma: hostile",
            [
                {"title": "Moved", "url": o + "/media/c1/moved.pdf", "content_type": "application/pdf"},
                {"title": "Moved local", "url": o + "/media/c8/moved.pdf", "content_type": "application/pdf"},
                {"title": "Traversal", "url": o + "/media/c2/x1.pdf", "filename": "../../etc/passwd.pdf"},
                {"title": "Newline\nin title", "url": o + "/media/c3/x2.pdf", "filename": "evil\nname.pdf"},
                {"title": "Dashes", "url": o + "/media/c4/x3.pdf", "filename": "--force -rf.pdf"},
                {"title": "Unicode", "url": o + "/media/c5/x4.pdf", "filename": "Évaluation résumé.pdf"},
                {"title": "Encoded", "url": o + "/media/c6/..%2F..%2Fsecret.pdf"},
                {"title": "Fake", "url": o + "/media/c7/fake.pdf", "content_type": "application/pdf"},
                {"title": "Foreign", "url": "https://evil.example.com/media/x.pdf"},
                {"title": "Plain http", "url": "http://assets.publishing.service.gov.uk/media/y.pdf"},
            ],
            ["Department for Education"],
            "2020-01-15T00:00:00Z",
        ),
    )
    srv.add("/media/c1/moved.pdf", Reply(302, b"", (("Location", "https://evil.example.com/payload.pdf"),)))
    srv.add("/media/c8/moved.pdf", Reply(302, b"", (("Location", f"http://localhost:{srv.port}/media/c9/t.pdf"),)))
    srv.add_pdf("/media/c9/t.pdf", pdf_bytes("redirect target"))
    srv.add_pdf("/media/c2/x1.pdf", EXPECTED["passwd.pdf"])
    srv.add_pdf("/media/c3/x2.pdf", EXPECTED["evil_name.pdf"])
    srv.add_pdf("/media/c4/x3.pdf", EXPECTED["force_-rf.pdf"])
    srv.add_pdf("/media/c5/x4.pdf", EXPECTED["Evaluation_resume.pdf"])
    srv.add_pdf("/media/c6/../../secret.pdf", EXPECTED["secret.pdf"])
    srv.add_pdf("/media/c7/fake.pdf", b"<html>not a pdf</html>")

    srv.add_json(
        "/api/content/government/publications/delta",
        _publication(
            "Delta: same names",
            [
                {"title": "One", "url": o + "/media/d1/report.pdf"},
                {"title": "Two", "url": o + "/media/d2/report.pdf"},
                {"title": "Three", "url": o + "/media/d3/REPORT.pdf"},
            ],
            ["Department for Education"],
            "2016-11-30T00:00:00Z",
        ),
    )
    srv.add_pdf("/media/d1/report.pdf", EXPECTED["report.pdf"])
    srv.add_pdf("/media/d2/report.pdf", EXPECTED["report-2.pdf"])
    srv.add_pdf("/media/d3/REPORT.pdf", EXPECTED["REPORT-3.pdf"])

    # A collection with one publication and one good file.
    srv.add_json("/api/content" + SMALL, {"links": {"documents": [
        {"base_path": "/government/publications/small", "title": "Small"}]}})
    srv.add_json("/api/content/government/publications/small", _publication(
        "Small", [{"title": "Small report", "url": "/media/s1/small.pdf"}], ["Department for Education"],
        "2018-05-05T00:00:00Z"))
    srv.add_pdf("/media/s1/small.pdf", pdf_bytes("small"))


@pytest.fixture()
def srv() -> Iterator[FakeGovUK]:
    with FakeGovUK() as server:
        build_site(server)
        yield server


class FakeTime:
    """A clock that moves only when slept on (or by ``step`` per reading), recording every sleep."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.sleeps: list[float] = []

    def clock(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def opts(srv: FakeGovUK, into: Path, **kw: Any) -> FetchOptions:  # any FetchOptions field, by name
    base = FetchOptions(into=into, collection=COLLECTION, api_base=srv.api, pause=0.0, backoff=0.0, timeout=5.0, max_mb=0.001)
    return replace(base, **kw)


def get(srv: FakeGovUK, into: Path, fake: FakeTime | None = None, **kw: object) -> FetchSummary:
    """Fetch from the fake with a fake clock (never a real sleep)."""
    fake = fake or FakeTime()
    return fetch_collection(opts(srv, into, **kw), sleep=fake.sleep, clock=fake.clock)


def one_file_site(srv: FakeGovUK, name: str, *replies: Reply) -> str:
    """A collection ``/c/<name>`` with one publication and one attachment served by ``replies``."""
    srv.add_json(f"/api/content/c/{name}", {"links": {"documents": [{"base_path": f"/p/{name}"}]}})
    srv.add_json(f"/api/content/p/{name}", _publication(name, [{"title": name, "url": f"/media/{name}.pdf"}],
                                                        [], "2020-01-01"))
    srv.add(f"/media/{name}.pdf", *replies)
    return f"/c/{name}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rows_of(into: Path) -> dict[str, dict[str, str]]:
    with (into / "sources.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return {r["path"]: r for r in reader}


def reason_for(summary: FetchSummary, url_part: str) -> str:
    hits = [f.reason for f in summary.failed if url_part in f.url]
    assert len(hits) == 1, (url_part, summary.failed)
    return hits[0]


def parts_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.part"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- pure parts: URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["www.gov.uk", "10.0.0.1", "128.0.0.1", "localhost.evil.com", "::2", ""])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


ALLOWED = ("www.gov.uk", "assets.publishing.service.gov.uk", "127.0.0.1:8123")


@pytest.mark.parametrize("url", ["https://www.gov.uk/api/content/x", "https://assets.publishing.service.gov.uk/m/b.pdf",
                                 "https://WWW.GOV.UK/x", "http://127.0.0.1:8123/media/x.pdf"])
def test_check_url_accepts(url: str) -> None:
    assert check_url(url, ALLOWED) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://www.gov.uk/x", "plain http"),
        ("http://assets.publishing.service.gov.uk/media/y.pdf", "plain http"),
        ("https://evil.example.com/x.pdf", "not allowed"),
        ("https://www.gov.uk.evil.com/x.pdf", "not allowed"),
        ("https://user:pw@www.gov.uk/x", "credentials"),
        ("ftp://www.gov.uk/x.pdf", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://127.0.0.1:9999/x.pdf", "not allowed"),  # loopback, but another port
        ("https:///nohost", "not allowed"),
        ("https://www.gov.uk:99999/x", "not a valid URL"),
    ],
)
def test_check_url_refuses(url: str, words: str) -> None:
    reason = check_url(url, ALLOWED)
    assert reason is not None and words in reason


def test_check_url_host_without_port_allows_any_port() -> None:
    assert check_url("http://127.0.0.1:5555/x", ["127.0.0.1"]) is None
    assert check_url("https://www.gov.uk:8443/x", ["www.gov.uk"]) is None
    assert check_url("http://[::1]:5555/x", ["[::1]:5555"]) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/government/collections/x", "/government/collections/x"),
        ("government/collections/x/", "/government/collections/x"),
        ("https://www.gov.uk/government/collections/x", "/government/collections/x"),
    ],
)
def test_normalise_base_path(raw: str, expected: str) -> None:
    assert normalise_base_path(raw) == expected


@pytest.mark.parametrize(
    "raw", ["/government/../admin", "/a/%2e%2e/b", "https://evil.example.com/government/x", "/x?y=1", "/", "/a\nb"]
)
def test_normalise_base_path_refuses(raw: str) -> None:
    with pytest.raises(FetchError, match="/government/collections/"):
        normalise_base_path(raw)


# -- pure parts: file names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\windows\\win.ini.pdf", "win.ini.pdf"),
        ("evil\nname.pdf", "evil_name.pdf"),
        ("--force -rf.pdf", "force_-rf.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("Évaluation résumé.pdf", "Evaluation_resume.pdf"),
        ("report", "report.pdf"),
        ("report.PDF", "report.pdf"),
        ("a..b...c.pdf", "a.b.c.pdf"),
        ("tab\there\x00nul.pdf", "tab_here_nul.pdf"),
        ("CON.pdf", "CON_.pdf"),
        ("nul.x.pdf", "nul_.x.pdf"),
        ("..pdf", "fallback.pdf"),
        ("报告.pdf", "fallback.pdf"),
        ("", "fallback.pdf"),
        ("dir/", "fallback.pdf"),
    ],
)
def test_sanitise_filename(raw: str, expected: str) -> None:
    assert sanitise_filename(raw, fallback="fallback") == expected


def test_sanitise_filename_limits_length_and_bad_fallback() -> None:
    name = sanitise_filename("x" * 500 + ".pdf")
    assert MAX_NAME - 5 <= len(name) <= MAX_NAME and name.endswith(".pdf")
    assert sanitise_filename("", fallback="../..") == "document.pdf"


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.pdf")
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))}


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=20))
def test_sanitise_filename_always_safe(raw: str, fallback: str) -> None:
    name = sanitise_filename(raw, fallback=fallback)
    assert SAFE_NAME.fullmatch(name), name
    assert ".." not in name and len(name) <= MAX_NAME and os.path.basename(name) == name
    assert name[:-4].split(".")[0].upper() not in RESERVED


def _att(name: str, page: str = "/government/publications/p") -> Attachment:
    return Attachment(url=f"https://www.gov.uk/media/{name}", name=name, title=name, authors="",
                      year=None, publisher="DfE", page_url=GOVUK + page)


def test_plan_files_is_deterministic_and_respects_other_rows() -> None:
    atts = [_att("a.pdf"), _att("A.pdf"), _att("../b.pdf"), _att("c.pdf"), _att("报告.pdf"), _att("y" * 200)]
    rows = {
        "c.pdf": {"path": "c.pdf", "url": GOVUK + "/government/publications/other"},  # another publication's
        "a.pdf": {"path": "a.pdf", "url": GOVUK + "/government/publications/p"},  # ours: reused
    }
    planned, notes = plan_files(atts, rows)
    names = [p.path for p in planned]
    assert names[:5] == ["a.pdf", "A-2.pdf", "b.pdf", "c-2.pdf", "p.pdf"]
    assert len(names[5]) <= MAX_NAME and names[5].endswith(".pdf")
    assert notes == []
    assert [p.path for p in plan_files(atts, rows)[0]] == names


def test_plan_files_keeps_files_it_did_not_write() -> None:
    rows = {"ours.pdf": {"path": "ours.pdf", "url": GOVUK + "/government/publications/p"}}
    planned, notes = plan_files([_att("report.pdf"), _att("ours.pdf")], rows, on_disk=["Report.PDF", "ours.pdf"])
    assert [p.path for p in planned] == ["report-2.pdf", "ours.pdf"]
    assert notes == ["kept report.pdf (not in sources.csv, so not ours); saving the download as report-2.pdf"]


# -- pure parts: the Content API JSON -------------------------------------------------------------


def test_collection_documents_dedupes_and_drops_invalid() -> None:
    doc = {"links": {"documents": [
        {"base_path": "/government/publications/a", "title": " A\n title "},
        {"base_path": "/government/publications/a", "title": "dup"},
        {"base_path": "https://evil.example.com/b", "title": "foreign"},
        {"base_path": "/government/../b", "title": "traversal"},
        {"title": "no path"}, {"base_path": 7}, "junk",
        {"base_path": "/government/publications/c", "title": "C"},
    ]}}
    assert collection_documents(doc) == ["/government/publications/a", "/government/publications/c"]
    assert collection_documents({}) == []
    malformed: tuple[object, ...] = ([], {"links": []}, {"links": {"documents": "x"}})
    for bad in malformed:
        with pytest.raises(Skip, match="malformed"):
            collection_documents(bad)


def test_publication_attachments_metadata() -> None:
    doc = _publication(
        "Pub title",
        [
            {"title": "Main report", "url": "https://assets.publishing.service.gov.uk/media/1/main.pdf",
             "content_type": "application/pdf"},
            {"title": "", "url": "/media/2/annex%20one.pdf"},
            {"title": "HTML", "url": "/government/publications/p/html", "content_type": "text/html"},
            {"title": "Sheet", "url": "/media/3/data.csv", "content_type": "text/csv"},
            {"title": "Typed", "url": "/media/4/download", "content_type": "application/pdf; charset=binary"},
            {"title": "No URL"}, {"url": 7}, "junk",
        ],
        ["Department for Education", "Spring Consortium"],
        "2017-07-20T09:30:00.000+01:00",
    )
    pdfs = publication_attachments(doc, "/government/publications/p")
    assert [a.url for a in pdfs] == [
        "https://assets.publishing.service.gov.uk/media/1/main.pdf",
        "https://www.gov.uk/media/2/annex%20one.pdf",
        "https://www.gov.uk/media/4/download",
    ]
    assert [a.name for a in pdfs] == ["main.pdf", "annex one.pdf", "download"]
    assert [a.title for a in pdfs] == ["Main report", "Pub title", "Typed"]
    assert {a.authors for a in pdfs} == {"Department for Education; Spring Consortium"}
    assert {a.publisher for a in pdfs} == {"Department for Education"}
    assert {a.year for a in pdfs} == {2017}
    assert {a.page_url for a in pdfs} == {"https://www.gov.uk/government/publications/p"}


def test_publication_attachments_fallbacks() -> None:
    doc = {"title": "T", "details": {"attachments": [{"url": "/a.pdf"}]}, "links": {}, "first_published_at": 2019}
    (att,) = publication_attachments(doc, "/government/publications/t", origin="http://127.0.0.1:1")
    assert att.url == "http://127.0.0.1:1/a.pdf"
    assert (att.publisher, att.authors, att.year, att.title) == ("Department for Education", "", None, "T")


@pytest.mark.parametrize(
    "doc",
    [[], "text", {"details": []}, {"details": {"attachments": {"a": 1}}}, {"links": "x"},
     {"links": {"organisations": 5}}],
)
def test_publication_attachments_refuses_wrong_types(doc: object) -> None:
    with pytest.raises(Skip, match="malformed Content API reply"):
        publication_attachments(doc, "/government/publications/t")


def test_format_summary_lists_failures_and_notes() -> None:
    text = format_summary(FetchSummary(
        fetched=("a.pdf",), skipped=("b.pdf", "c.pdf"), notes=("kept x.pdf",),
        failed=(Failure("https://x/y.pdf", "HTTP 404 Not Found", "y.pdf"),)))
    assert text.splitlines()[0] == "fetched 1, skipped 2 (already present), failed 1"
    assert "  note: kept x.pdf" in text
    assert "y.pdf https://x/y.pdf: HTTP 404 Not Found" in text


def test_summary_dataclasses_are_frozen() -> None:
    summary = replace(FetchSummary(), failed=(Failure("u", "r"),))
    with pytest.raises(AttributeError):
        summary.fetched = ("x",)  # type: ignore[misc]  # the assignment the frozen dataclass must refuse
    with pytest.raises(AttributeError):
        summary.failed[0].reason = "other"  # type: ignore[misc]  # likewise


# -- against the fake server ----------------------------------------------------------------------


def test_fetch_full_collection(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "corpus" / "official"
    summary = get(srv, into)

    assert sorted(summary.fetched) == sorted(EXPECTED)
    assert summary.skipped == ()
    # Exactly the good files landed, byte for byte, and nothing else (no part files).
    assert sorted(p.name for p in into.iterdir()) == sorted([*EXPECTED, "sources.csv"])
    for name, body in EXPECTED.items():
        assert (into / name).read_bytes() == body
    # Nothing escaped the target folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["official"]

    assert "404" in reason_for(summary, "/publications/gone")
    assert "404" in reason_for(summary, "missing.pdf")
    assert "truncated" in reason_for(summary, "truncated.pdf")
    assert "too large" in reason_for(summary, "huge.pdf")
    assert "too large" in reason_for(summary, "stream.pdf")
    assert "refused redirect" in reason_for(summary, "/media/c1/moved.pdf")
    assert "refused redirect" in reason_for(summary, "/media/c8/moved.pdf")
    assert "not a PDF" in reason_for(summary, "fake.pdf")
    assert "refused" in reason_for(summary, "evil.example.com/media/x.pdf")
    assert "plain http" in reason_for(summary, "assets.publishing.service.gov.uk/media/y.pdf")
    assert len(summary.failed) == 10

    # Retries: 500 then success; a body that broke off is left to the next run.
    assert srv.hits["/media/b2/flaky.pdf"] == 2
    assert srv.hits["/media/b3/truncated.pdf"] == 1
    assert srv.hits["/media/b1/missing.pdf"] == 1  # 404 is not retried
    assert srv.hits["/media/c9/t.pdf"] == 0  # the redirect was refused, not followed
    assert srv.hits["/api/content/government/publications/alpha"] == 1  # the duplicate entry followed once


def test_sources_csv_contents(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    get(srv, into)
    rows = rows_of(into)
    assert sorted(rows) == sorted(EXPECTED)
    for name, body in EXPECTED.items():
        assert rows[name]["sha256"] == sha(body)
        assert rows[name]["licence"] == LICENCE
    assert rows["alpha-report.pdf"] == {
        "path": "alpha-report.pdf",
        "title": "Alpha evaluation report",
        "authors": "Department for Education; Spring Consortium",
        "year": "2017",
        "publisher": "Department for Education",
        "url": "https://www.gov.uk/government/publications/alpha",
        "licence": LICENCE,
        "sha256": sha(EXPECTED["alpha-report.pdf"]),
    }
    assert rows["Alpha_Annex.pdf"]["title"] == "Alpha: evaluation"  # empty title: the publication's
    flaky = rows["flaky.pdf"]
    assert (flaky["authors"], flaky["publisher"], flaky["year"]) == ("", "Department for Education", "2019")
    assert rows["evil_name.pdf"]["title"] == "Newline in title"
    assert rows["report-2.pdf"]["url"] == "https://www.gov.uk/government/publications/delta"


def test_fetched_catalogue_is_what_ingest_reads(srv: FakeGovUK, tmp_path: Path) -> None:
    from qa.ingest import read_catalogue

    get(srv, tmp_path / "corpus" / "official", collection=SMALL)
    meta = read_catalogue(tmp_path / "corpus")["official/small.pdf"]
    assert (meta.title, meta.year, meta.licence) == ("Small report", 2018, LICENCE)


def test_rerun_skips_present_files_without_downloading(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    first = get(srv, into)
    csv_before = (into / "sources.csv").read_bytes()
    media_before = srv.count("/media/")
    good = {"/media/a1/", "/media/a2/", "/media/b2/", "/media/c2/", "/media/d1/"}
    good_before = {p: srv.count(p) for p in good}

    second = get(srv, into)
    assert second.fetched == () and second.notes == ()
    assert sorted(second.skipped) == sorted(first.fetched)
    assert {p: srv.count(p) for p in good} == good_before  # not downloaded again
    # Only the failing ones were tried again, once each: the truncated file, the 404, the
    # two oversized, the two refused redirects and the fake PDF.
    assert srv.count("/media/") - media_before == 7
    assert srv.count("/media/b1/") == 2
    assert (into / "sources.csv").read_bytes() == csv_before


def test_rerun_redownloads_changed_file(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    get(srv, into, collection=SMALL)
    (into / "small.pdf").write_bytes(b"%PDF-1.4 tampered")
    assert get(srv, into, collection=SMALL).fetched == ("small.pdf",)
    assert srv.hits["/media/s1/small.pdf"] == 2
    assert (into / "small.pdf").read_bytes() == pdf_bytes("small")
    (into / "small.pdf").unlink()
    assert get(srv, into, collection=SMALL).fetched == ("small.pdf",)


def test_dry_run_writes_nothing(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    summary = get(srv, into, dry_run=True)
    assert not into.exists()
    assert list(tmp_path.iterdir()) == []
    assert srv.count("/media/") == 0
    assert summary.dry_run and summary.fetched == ()
    assert sorted(p.path for p in summary.planned) == sorted(
        [*EXPECTED, "missing.pdf", "truncated.pdf", "huge.pdf", "stream.pdf", "moved.pdf", "moved-2.pdf", "fake.pdf"]
    )
    text = format_summary(summary)
    assert text.startswith("dry run: would fetch 18 file(s)")
    assert "alpha-report.pdf" in text


def test_dry_run_reports_present_files_as_skipped(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    get(srv, into, collection=SMALL)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in into.iterdir())
    assert get(srv, into, collection=SMALL, dry_run=True).skipped == ("small.pdf",)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in into.iterdir()) == before


def test_limit_follows_at_most_n_publications(srv: FakeGovUK, tmp_path: Path) -> None:
    summary = get(srv, tmp_path / "official", limit=1)
    assert sorted(summary.fetched) == ["Alpha_Annex.pdf", "alpha-report.pdf"]
    assert srv.hits["/api/content/government/publications/beta"] == 0
    assert srv.count("/api/content/government/publications/") == 1
    assert get(srv, tmp_path / "none", limit=0).planned == ()


def test_merges_with_existing_sources(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    into.mkdir()
    (into / "handmade.pdf").write_bytes(b"%PDF-1.4 mine")
    (into / "small.pdf").write_bytes(b"%PDF-1.4 someone else's small")
    (into / "sources.csv").write_text(
        "path,title,authors,year,publisher,url,licence,sha256\n"
        "handmade.pdf,Mine,Me,2001,Me,https://example.org,CC-BY,abc\n"
        "small.pdf,Other,X,2002,X,https://www.gov.uk/government/publications/other,OGL,def\n",
        encoding="utf-8",
    )
    summary = get(srv, into, collection=SMALL)
    assert summary.fetched == ("small-2.pdf",)  # the other publication's small.pdf is untouched
    assert (into / "small.pdf").read_bytes() == b"%PDF-1.4 someone else's small"
    rows = rows_of(into)
    assert list(rows) == ["handmade.pdf", "small.pdf", "small-2.pdf"]
    assert rows["handmade.pdf"]["title"] == "Mine" and rows["handmade.pdf"]["sha256"] == "abc"
    assert rows["small-2.pdf"]["sha256"] == sha(pdf_bytes("small"))


def test_never_overwrites_a_file_it_did_not_write(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    into.mkdir()
    (into / "small.pdf").write_bytes(b"%PDF-1.4 the user's own report")
    summary = get(srv, into, collection=SMALL)
    assert (into / "small.pdf").read_bytes() == b"%PDF-1.4 the user's own report"
    assert summary.fetched == ("small-2.pdf",)
    assert (into / "small-2.pdf").read_bytes() == pdf_bytes("small")
    assert "kept small.pdf" in format_summary(summary) and "small-2.pdf" in summary.notes[0]
    assert list(rows_of(into)) == ["small-2.pdf"]
    # A rerun keeps to the same names and downloads nothing.
    again = get(srv, into, collection=SMALL)
    assert again.skipped == ("small-2.pdf",) and srv.hits["/media/s1/small.pdf"] == 1


def test_never_writes_through_a_symlink(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    into.mkdir()
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"precious")
    (into / "small.pdf").symlink_to(outside)
    summary = get(srv, into, collection=SMALL)
    assert outside.read_bytes() == b"precious" and (into / "small.pdf").is_symlink()
    assert summary.fetched == ("small-2.pdf",)


def test_updates_metadata_of_skipped_rows(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    get(srv, into, collection=SMALL)
    rows = rows_of(into)
    rows["small.pdf"]["title"] = "Stale title"
    write_sources(into / "sources.csv", rows, COLUMNS)
    assert get(srv, into, collection=SMALL).skipped == ("small.pdf",)
    assert srv.hits["/media/s1/small.pdf"] == 1
    assert rows_of(into)["small.pdf"]["title"] == "Small report"


def test_files_take_the_folders_usual_permissions(srv: FakeGovUK, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        get(srv, tmp_path, collection=SMALL)
    finally:
        os.umask(old)
    for name in ("small.pdf", "sources.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_retry_after_and_backoff_use_the_injected_sleep(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/r", {"links": {"documents": [{"base_path": "/p/r"}]}})
    srv.add_json("/api/content/p/r", _publication("R", [
        {"title": "Limited", "url": "/media/r1/limited.pdf"},
        {"title": "Busy", "url": "/media/r2/busy.pdf"},
        {"title": "Greedy", "url": "/media/r3/greedy.pdf"},
    ], [], "2020-01-01"))
    srv.add("/media/r1/limited.pdf", Reply(429, b"", (("Retry-After", "7"),)), Reply(200, pdf_bytes("l"), PDF))
    srv.add("/media/r2/busy.pdf", Reply(503, b""), Reply(502, b""), Reply(200, pdf_bytes("b"), PDF))
    srv.add("/media/r3/greedy.pdf", Reply(429, b"", (("Retry-After", "3600"),)))
    fake = FakeTime()
    summary = get(srv, tmp_path, fake, collection="/c/r", backoff=0.5)
    assert sorted(summary.fetched) == ["busy.pdf", "limited.pdf"]
    assert fake.sleeps == [7.0, 0.5, 1.0]
    assert "too long" in reason_for(summary, "greedy.pdf")
    assert srv.hits["/media/r3/greedy.pdf"] == 1


def test_pause_between_requests(srv: FakeGovUK, tmp_path: Path) -> None:
    fake = FakeTime()
    get(srv, tmp_path, fake, collection=SMALL, pause=5.0)
    assert fake.sleeps == [5.0, 5.0]  # collection, publication, file: two pauses


def test_gives_up_after_attempts_on_5xx(srv: FakeGovUK, tmp_path: Path) -> None:
    collection = one_file_site(srv, "down", Reply(500, b""))
    fake = FakeTime()
    summary = get(srv, tmp_path, fake, collection=collection, attempts=3, backoff=1.0)
    assert "HTTP 500" in reason_for(summary, "down.pdf") and "3 attempts" in reason_for(summary, "down.pdf")
    assert srv.hits["/media/down.pdf"] == 3
    assert fake.sleeps == [1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == []


def test_timeout_counts_as_failure(srv: FakeGovUK, tmp_path: Path) -> None:
    collection = one_file_site(srv, "slow", Reply(200, pdf_bytes("slow"), PDF, delay=1.0))
    summary = get(srv, tmp_path, collection=collection, timeout=0.2, attempts=1)
    assert "timed out after 0.2 s" in reason_for(summary, "slow.pdf")
    assert not (tmp_path / "slow.pdf").exists() and parts_in(tmp_path) == []


def test_trickling_server_meets_the_whole_request_deadline(srv: FakeGovUK, tmp_path: Path) -> None:
    # One byte every 20 ms never trips the 5 s per-read timeout. The fake clock moves
    # 10 s per reading once the download has begun, so the 30 s deadline passes after
    # a few bytes: without a whole-request deadline this download would run on.
    collection = one_file_site(srv, "trickle", Reply(200, pdf_bytes("trickle", 400), PDF, trickle=0.02))

    class Downloading(FakeTime):
        def clock(self) -> float:
            self.step = 10.0 if parts_in(tmp_path) else 0.0
            return super().clock()

    fake = Downloading()
    summary = get(srv, tmp_path, fake, collection=collection, timeout=5.0, deadline=30.0, attempts=1)
    assert "longer than 30 s in all" in reason_for(summary, "trickle.pdf")
    assert srv.hits["/media/trickle.pdf"] == 1
    assert not (tmp_path / "trickle.pdf").exists() and parts_in(tmp_path) == []


def test_part_files_are_cleaned_on_start(srv: FakeGovUK, tmp_path: Path) -> None:
    for name in (".fetch-0123abcd.part", ".sources-4567.part"):
        (tmp_path / name).write_bytes(b"%PDF-1.4 half")
    (tmp_path / ".fetch-keep.pdf").write_bytes(b"not a part file")
    get(srv, tmp_path, collection=SMALL)
    assert parts_in(tmp_path) == [] and (tmp_path / ".fetch-keep.pdf").exists()


def test_part_file_is_removed_when_interrupted(srv: FakeGovUK, tmp_path: Path) -> None:
    collection = one_file_site(srv, "big", Reply(200, pdf_bytes("big", 400), PDF, trickle=0.001))

    class Interrupting(FakeTime):
        def clock(self) -> float:
            if parts_in(tmp_path):  # the download has begun: press Ctrl-C
                raise KeyboardInterrupt
            return super().clock()

    with pytest.raises(KeyboardInterrupt):
        get(srv, tmp_path, Interrupting(), collection=collection)
    assert parts_in(tmp_path) == [] and not (tmp_path / "big.pdf").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_mid_download_leaves_no_part_file(srv: FakeGovUK, tmp_path: Path) -> None:
    collection = one_file_site(srv, "slowpdf", Reply(200, pdf_bytes("slowpdf", 6000), PDF, trickle=0.01))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "fetch", "--into", str(tmp_path), "--api-base", srv.api, "--collection",
         collection, "--pause", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(12000):  # wait (up to 2 minutes on a busy machine) for the download to start
            if parts_in(tmp_path) or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert parts_in(tmp_path), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert parts_in(tmp_path) == [] and not (tmp_path / "slowpdf.pdf").exists()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"details": {"attachments": "abc"}}', b'{"details": []}', b"[1, 2]",
     b'{"links": {"organisations": [{"title": 5}]}, "details": {"attachments": [{"url": {}}, 3]}}', b"{nope"],
)
def test_malformed_publication_is_skipped_with_a_reason(srv: FakeGovUK, tmp_path: Path, body: bytes) -> None:
    srv.add_json("/api/content/c/mixed", {"links": {"documents": [{"base_path": "/p/bad"}, {"base_path": "/p/good"}]}})
    srv.add("/api/content/p/bad", Reply(200, body, (("Content-Type", "application/json"),)))
    srv.add_json("/api/content/p/good", _publication("G", [{"title": "G", "url": "/media/s1/small.pdf"}], [], ""))
    summary = get(srv, tmp_path, collection="/c/mixed")
    assert summary.fetched == ("small.pdf",)
    bad = [f.reason for f in summary.failed]
    assert len(bad) <= 1 and all("malformed" in r or "not valid JSON" in r for r in bad)


def test_redirect_within_allowed_hosts_is_followed(srv: FakeGovUK, tmp_path: Path) -> None:
    collection = one_file_site(srv, "old", Reply(301, b"", (("Location", "/media/r/new.pdf"),)))
    srv.add_pdf("/media/r/new.pdf", pdf_bytes("moved"))
    assert get(srv, tmp_path, collection=collection).fetched == ("old.pdf",)
    assert (tmp_path / "old.pdf").read_bytes() == pdf_bytes("moved")


def test_redirect_loop_gives_up(srv: FakeGovUK, tmp_path: Path) -> None:
    collection = one_file_site(srv, "loop", Reply(302, b"", (("Location", "/media/loop.pdf"),)))
    assert "redirects" in reason_for(get(srv, tmp_path, collection=collection), "loop.pdf")
    assert srv.hits["/media/loop.pdf"] == 6


def test_asset_host_option_allows_another_loopback_host(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/other", {"links": {"documents": [{"base_path": "/p/other"}]}})
    srv.add_json("/api/content/p/other", _publication(
        "O", [{"title": "O", "url": f"http://localhost:{srv.port}/media/s1/small.pdf"}], [], ""))
    refused = get(srv, tmp_path / "a", collection="/c/other")
    assert "not allowed" in reason_for(refused, "small.pdf") and srv.hits["/media/s1/small.pdf"] == 0
    assert get(srv, tmp_path / "b", collection="/c/other", asset_host=("localhost",)).fetched == ("small.pdf",)


def test_http_to_non_loopback_api_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="plain http"):
        fetch_collection(FetchOptions(into=tmp_path, api_base="http://www.gov.uk/api/content", pause=0))
    assert list(tmp_path.iterdir()) == []


def test_offline_raises_clear_fetch_error(tmp_path: Path) -> None:
    fake = FakeTime()
    options = FetchOptions(into=tmp_path / "o", api_base=f"http://127.0.0.1:{_closed_port()}/api/content",
                           pause=0)
    with pytest.raises(FetchError) as info:
        fetch_collection(options, sleep=fake.sleep, clock=fake.clock)
    message = str(info.value)
    assert message.startswith("cannot reach 127.0.0.1: ") and "refused; are you offline?" in message
    assert "\n" not in message and "--api-base" in message
    assert fake.sleeps == []  # an unreachable host is not retried
    assert not (tmp_path / "o").exists()


def test_collection_errors_raise_fetch_error(srv: FakeGovUK, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404.*--collection"):
        get(srv, tmp_path, collection="/government/collections/nope")
    srv.add("/api/content/c/bad", Reply(200, b"{not json"))
    with pytest.raises(FetchError, match="not valid JSON"):
        get(srv, tmp_path, collection="/c/bad")
    srv.add_json("/api/content/c/list", [1, 2])
    with pytest.raises(FetchError, match="malformed"):
        get(srv, tmp_path, collection="/c/list")


def test_json_errors_name_their_url_once(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add("/api/content/c/bad", Reply(200, b"{not json"))
    with pytest.raises(FetchError) as info:
        get(srv, tmp_path, collection="/c/bad")
    assert str(info.value).count("/api/content/c/bad") == 1, str(info.value)
    srv.add_json("/api/content/c/two", {"links": {"documents": [{"base_path": "/p/broken"}]}})
    srv.add("/api/content/p/broken", Reply(200, b"{nope", (("Content-Type", "application/json"),)))
    summary = get(srv, tmp_path, collection="/c/two")
    assert "not valid JSON" in reason_for(summary, "/p/broken")
    line = format_summary(summary).splitlines()[-1]
    assert line.count("/api/content/p/broken") == 1 and "not valid JSON" in line, line


def test_json_size_cap_is_named_as_the_fixed_cap_not_max_mb(srv: FakeGovUK, tmp_path: Path) -> None:
    """A catalogue page over 16 MiB is refused whatever --max-mb says, and the reason says so."""
    srv.add("/api/content/c/huge", Reply(200, b" " * (16 * 2**20 + 1), (("Content-Type", "application/json"),)))
    with pytest.raises(FetchError) as info:
        get(srv, tmp_path, collection="/c/huge", max_mb=500.0)
    message = str(info.value)
    assert "16 MiB" in message and "--max-mb" not in message, message
    assert message.count("/api/content/c/huge") == 1, message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_unusable_sources_csv_is_a_fetch_error(srv: FakeGovUK, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "sources.csv")
    with pytest.raises(FetchError, match="not a regular file.*move it away"):
        get(srv, tmp_path, collection=SMALL)
    assert stat.S_ISFIFO((tmp_path / "sources.csv").lstat().st_mode)


# -- the command ----------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qa fetch")
    configure_parser(parser)
    return parser.parse_args(argv)


def test_parser_defaults() -> None:
    args = _parse([])
    assert args.collection == fetch.DEFAULT_COLLECTION
    assert Path(args.into) == Path("corpus/official")
    assert (args.limit, args.dry_run, args.pause, args.timeout, args.deadline, args.max_mb) == (
        None, False, 1.0, 30.0, 600.0, 100.0)
    assert args.api_base is None and args.asset_host == []


@pytest.mark.parametrize("argv", [["--pause", "x"], ["--limit", "1.5"], ["--attempts", "two"]])
def test_parser_rejects_non_numbers(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(argv)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--limit", "-1"], "--limit"), (["--max-mb", "0"], "--max-mb"), (["--timeout", "-3"], "--timeout"),
     (["--pause", "nan"], "--pause"), (["--pause", "inf"], "--pause"), (["--attempts", "0"], "--attempts"),
     (["--deadline", "0"], "--deadline"), (["--backoff", "-1"], "--backoff")],
)
def test_out_of_range_options_are_one_line_fetch_errors(argv: list[str], flag: str) -> None:
    with pytest.raises(FetchError, match=f"^{flag} out of range: .*--attempts takes 1 or more") as info:
        _options(argv)
    assert "\n" not in str(info.value)


def _options(argv: list[str]) -> fetch.FetchOptions:
    """FetchOptions as `qa fetch ARGV` builds them: the environment's settings, then the command line."""
    args = _parse(argv)
    return fetch.options_from_args(args, settings_from(args))


def test_options_from_args_env_and_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_GOVUK_API", "http://127.0.0.1:1/api")
    options = _options(["--asset-host", "a.example", "--asset-host", "b.example", "--max-mb", "0.5", "--deadline", "90"])
    assert options.api_base == "http://127.0.0.1:1/api"
    assert options.asset_host == ("a.example", "b.example")
    assert (options.max_mb, options.deadline) == (0.5, 90.0)
    assert _options(["--api-base", "https://mirror.example/api"]).api_base == "https://mirror.example/api"
    monkeypatch.delenv("QA_GOVUK_API")
    assert _options([]).api_base == DEFAULT_GOVUK_API


def test_run_prints_summary_and_returns_exit_code(
    srv: FakeGovUK, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--pause", "0", "--backoff", "0", "--max-mb", "0.001"]
    ok = _parse(["--into", str(tmp_path / "ok"), "--api-base", srv.api, "--collection", SMALL, *common])
    assert run(ok, settings_from(ok)) == 0
    assert capsys.readouterr().out.startswith("fetched 1, skipped 0 (already present), failed 0")
    assert (tmp_path / "ok" / "small.pdf").exists()

    monkeypatch.setenv("QA_GOVUK_API", srv.api)  # the environment stands in for --api-base
    bad = _parse(["--into", str(tmp_path / "bad"), "--collection", COLLECTION, "--limit", "2", *common])
    assert run(bad, settings_from(bad)) == 1
    out = capsys.readouterr().out
    assert "fetched 3, skipped 0 (already present), failed 4" in out
    assert "FAILED missing.pdf" in out

    dry = _parse(["--into", str(tmp_path / "dry"), "--collection", SMALL, "--dry-run", *common])
    assert run(dry, settings_from(dry)) == 0
    assert "would fetch 1 file(s)" in capsys.readouterr().out
    assert not (tmp_path / "dry").exists()


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = qa_main(["fetch", "--into", str(tmp_path), "--api-base",
                    f"http://127.0.0.1:{_closed_port()}/api/content", "--pause", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("qa fetch: cannot reach 127.0.0.1") and "are you offline?" in err and err.count("\n") == 1
    (tmp_path / "blocked").write_text("a file where the folder should be")
    code = qa_main(["fetch", "--into", str(tmp_path / "blocked" / "x"), "--api-base", "http://127.0.0.1:1/api",
                    "--dry-run", "--collection", "/c/x?bad"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "/government/collections/" in err


def test_fetch_parser_imports_no_heavy_modules() -> None:
    # `qa fetch --help` needs only the options: the network stack loads when a fetch runs.
    # The qa package's own __init__ is bypassed, so this measures what fetch itself imports.
    code = ("import argparse, sys, types\n"
            f"pkg = types.ModuleType('qa'); pkg.__path__ = [{str(ROOT / 'qa')!r}]; sys.modules['qa'] = pkg\n"
            "from qa.fetch import configure_parser\n"
            "parser = argparse.ArgumentParser(prog='qa fetch')\nconfigure_parser(parser)\nparser.print_help()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'langchain_text_splitters', "
            "'sentence_transformers', 'requests', 'urllib3', 'tqdm', 'pypdf', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--deadline" in out and out.strip().endswith("[]")
