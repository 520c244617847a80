"""Tests of ``qa fetch`` against a local fake of GOV.UK (no internet)."""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa import fetch
from qa.errors import FetchError
from qa.fetch import (
    LICENCE,
    SOURCES_COLUMNS,
    Attachment,
    FetchOptions,
    FetchSummary,
    Failure,
    check_url,
    collection_documents,
    configure_parser,
    fetch_collection,
    format_summary,
    is_loopback_host,
    merge_rows,
    normalise_base_path,
    plan_files,
    publication_attachments,
    read_sources,
    retry_delay,
    run,
    sanitise_filename,
    unique_name,
    write_sources,
)

try:
    from tests.govuk_fake import FakeGovUK, Reply, pdf_bytes
except ImportError:  # tests/ is not a package: import the helper from beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from govuk_fake import FakeGovUK, Reply, pdf_bytes  # type: ignore[no-redef]

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


def _publication(title: str, attachments: list[dict[str, str]], orgs: list[str], published: str) -> dict:
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


def opts(srv: FakeGovUK, into: Path, **kw: object) -> FetchOptions:
    base: dict[str, object] = dict(
        into=into, collection=COLLECTION, api_base=srv.api, pause=0.0, backoff_base=0.0,
        timeout=5.0, max_bytes=int(0.001 * 1024 * 1024), progress=False,
    )
    base.update(kw)
    return FetchOptions(**base)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rows_of(into: Path) -> dict[str, dict[str, str]]:
    with (into / "sources.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == SOURCES_COLUMNS
        return {r["path"]: r for r in reader}


def reason_for(summary: FetchSummary, url_part: str) -> str:
    hits = [f.reason for f in summary.failed if url_part in f.url]
    assert len(hits) == 1, (url_part, summary.failed)
    return hits[0]


# ---------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["www.gov.uk", "10.0.0.1", "128.0.0.1", "localhost.evil.com", "::2", ""])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


ALLOWED = ("www.gov.uk", "assets.publishing.service.gov.uk", "127.0.0.1:8123")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.gov.uk/api/content/x",
        "https://assets.publishing.service.gov.uk/media/a/b.pdf",
        "https://WWW.GOV.UK/x",
        "http://127.0.0.1:8123/media/x.pdf",
    ],
)
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
        ("https:///nohost", "no host"),
    ],
)
def test_check_url_refuses(url: str, words: str) -> None:
    reason = check_url(url, ALLOWED)
    assert reason is not None and words in reason


def test_check_url_host_without_port_allows_any_port() -> None:
    assert check_url("http://127.0.0.1:5555/x", ["127.0.0.1"]) is None
    assert check_url("https://www.gov.uk:8443/x", ["www.gov.uk"]) is None


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


def test_sanitise_filename_limits_length() -> None:
    name = sanitise_filename("x" * 500 + ".pdf", max_length=60)
    assert len(name) <= 60 and len(name) >= 55 and name.endswith(".pdf")


def test_sanitise_filename_bad_fallback_still_safe() -> None:
    assert sanitise_filename("", fallback="../..") == "document.pdf"


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.pdf")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=20))
def test_sanitise_filename_always_safe(raw: str, fallback: str) -> None:
    name = sanitise_filename(raw, fallback=fallback)
    assert SAFE_NAME.fullmatch(name), name
    assert ".." not in name and len(name) <= fetch.MAX_NAME_LENGTH
    assert os.path.basename(name) == name
    stem = name[:-4]
    assert stem.split(".")[0].upper() not in fetch._WINDOWS_RESERVED


def test_unique_name_adds_suffixes_case_insensitively() -> None:
    taken = {"report.pdf", "report-2.pdf"}
    assert unique_name("new.pdf", taken) == "new.pdf"
    assert unique_name("Report.pdf", taken) == "Report-3.pdf"
    long = "y" * 96 + ".pdf"
    assert len(unique_name(long, {long.lower()})) <= fetch.MAX_NAME_LENGTH


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
    with pytest.raises(FetchError):
        normalise_base_path(raw)


def test_collection_documents_dedupes_and_drops_invalid() -> None:
    doc = {"links": {"documents": [
        {"base_path": "/government/publications/a", "title": " A\n title "},
        {"base_path": "/government/publications/a", "title": "dup"},
        {"base_path": "https://evil.example.com/b", "title": "foreign"},
        {"base_path": "/government/../b", "title": "traversal"},
        {"title": "no path"},
        "junk",
        {"base_path": "/government/publications/c", "title": "C"},
    ]}}
    assert collection_documents(doc) == [
        ("/government/publications/a", "A title"),
        ("/government/publications/c", "C"),
    ]
    assert collection_documents({}) == []


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
        ],
        ["Department for Education", "Spring Consortium"],
        "2017-07-20T09:30:00.000+01:00",
    )
    pdfs, others = publication_attachments(doc, "/government/publications/p")
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
    assert others == ["https://www.gov.uk/government/publications/p/html", "https://www.gov.uk/media/3/data.csv"]


def test_publication_attachments_fallbacks() -> None:
    doc = {"title": "T", "details": {"attachments": [{"url": "/a.pdf"}]}, "links": {}}
    (att,), _ = publication_attachments(doc, "/government/publications/t", origin="http://127.0.0.1:1")
    assert att.url == "http://127.0.0.1:1/a.pdf"
    assert (att.publisher, att.authors, att.year, att.title) == ("Department for Education", "", None, "T")


def _att(name: str, page: str = "/government/publications/p") -> Attachment:
    return Attachment(url=f"https://www.gov.uk/media/{name}", name=name, title=name, authors="",
                      year=None, publisher="DfE", page_url=GOVUK + page)


def test_plan_files_is_deterministic_and_respects_other_rows() -> None:
    atts = [_att("a.pdf"), _att("a.pdf"), _att("../b.pdf"), _att("c.pdf"), _att("报告.pdf")]
    existing = {
        "c.pdf": {"path": "c.pdf", "url": GOVUK + "/government/publications/other"},  # someone else's
        "a.pdf": {"path": "a.pdf", "url": GOVUK + "/government/publications/p"},  # ours: reused
    }
    planned = plan_files(atts, existing)
    assert [p.path for p in planned] == ["a.pdf", "a-2.pdf", "b.pdf", "c-2.pdf", "p.pdf"]
    assert [p.path for p in plan_files(atts, existing)] == [p.path for p in planned]


def test_retry_delay() -> None:
    assert [retry_delay(n, 0.5) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(3, 0.5, retry_after="7") == 7.0
    assert retry_delay(1, 0.5, retry_after="3600", max_retry_after=60) is None
    assert retry_delay(2, 0.5, retry_after="soon") == 1.0  # unparseable: plain backoff
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600 * 24))
    assert retry_delay(1, 0.5, retry_after=http_date) is None
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_delay(1, 0.5, retry_after=past) == 0.0


def test_sources_roundtrip_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "sources.csv"
    path.write_text("path,title,notes\nkeep.pdf,Keep,hand note\nold.pdf,Old,x\n", encoding="utf-8")
    rows, columns = read_sources(path)
    assert columns == [*SOURCES_COLUMNS, "notes"]
    merged = merge_rows(rows, [{"path": "old.pdf", "title": "New, \"quoted\"\ntitle"}, {"path": "n.pdf", "title": "N"}])
    write_sources(path, merged, columns)
    again, _ = read_sources(path)
    assert list(again) == ["keep.pdf", "old.pdf", "n.pdf"]
    assert again["keep.pdf"]["notes"] == "hand note"
    assert again["old.pdf"]["title"] == "New, \"quoted\"\ntitle"
    assert again["old.pdf"]["notes"] == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["sources.csv"]  # no temp file left


def test_read_sources_without_path_column(tmp_path: Path) -> None:
    path = tmp_path / "sources.csv"
    path.write_text("file,title\na.pdf,A\n", encoding="utf-8")
    with pytest.raises(FetchError, match="path"):
        read_sources(path)


def test_format_summary_lists_failures() -> None:
    text = format_summary(FetchSummary(
        fetched=("a.pdf",), skipped=("b.pdf", "c.pdf"),
        failed=(Failure("https://x/y.pdf", "HTTP 404 Not Found", "y.pdf"),), ignored=("u",)))
    assert text.splitlines()[0] == "fetched 1, skipped 2 (already present), failed 1"
    assert "y.pdf https://x/y.pdf: HTTP 404 Not Found" in text
    assert "ignored 1 non-PDF" in text


# ---------------------------------------------------------------------------
# Against the fake server
# ---------------------------------------------------------------------------


def test_fetch_full_collection(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "corpus" / "official"
    summary = fetch_collection(opts(srv, into))

    assert sorted(summary.fetched) == sorted(EXPECTED)
    assert summary.skipped == ()
    assert summary.ignored == ("http://127.0.0.1:%d/government/publications/alpha/summary" % srv.port,)
    # Exactly the good files landed, byte for byte, and nothing else (no temp files).
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
    assert summary.exit_code == 1

    # Retries: 500 then success; the truncated file was retried up to the attempt limit.
    assert srv.hits["/media/b2/flaky.pdf"] == 2
    assert srv.hits["/media/b3/truncated.pdf"] == 4
    assert srv.hits["/media/b1/missing.pdf"] == 1  # 404 is not retried
    assert srv.hits["/media/c9/t.pdf"] == 0  # the redirect was refused, not followed
    # The duplicate alpha entry was followed once.
    assert srv.hits["/api/content/government/publications/alpha"] == 1


def test_sources_csv_contents(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    fetch_collection(opts(srv, into))
    rows = rows_of(into)
    assert sorted(rows) == sorted(EXPECTED)
    for name, body in EXPECTED.items():
        assert rows[name]["sha256"] == sha(body)
        assert rows[name]["licence"] == LICENCE
    alpha = rows["alpha-report.pdf"]
    assert alpha == {
        "path": "alpha-report.pdf",
        "title": "Alpha evaluation report",
        "authors": "Department for Education; Spring Consortium",
        "year": "2017",
        "publisher": "Department for Education",
        "url": "https://www.gov.uk/government/publications/alpha",
        "licence": LICENCE,
        "sha256": sha(EXPECTED["alpha-report.pdf"]),
    }
    assert rows["Alpha_Annex.pdf"]["title"] == "Alpha: evaluation"  # empty title: publication's
    flaky = rows["flaky.pdf"]
    assert (flaky["authors"], flaky["publisher"], flaky["year"]) == ("", "Department for Education", "2019")
    assert rows["evil_name.pdf"]["title"] == "Newline in title"
    assert rows["report-2.pdf"]["url"] == "https://www.gov.uk/government/publications/delta"


def test_rerun_skips_present_files_without_downloading(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    first = fetch_collection(opts(srv, into))
    csv_before = (into / "sources.csv").read_bytes()
    media_before = srv.count("/media/")
    good = {"/media/a1/", "/media/a2/", "/media/b2/", "/media/c2/", "/media/d1/"}
    good_before = {p: srv.count(p) for p in good}

    second = fetch_collection(opts(srv, into))
    assert second.fetched == ()
    assert sorted(second.skipped) == sorted(first.fetched)
    assert {p: srv.count(p) for p in good} == good_before  # not downloaded again
    # Only the failing ones were tried again: 4 tries for the truncated file, one for each
    # of the 404, the two oversized, the two refused redirects and the fake PDF.
    assert srv.count("/media/") - media_before == 10
    assert srv.count("/media/b1/") == 2
    assert (into / "sources.csv").read_bytes() == csv_before


def test_rerun_redownloads_changed_file(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    fetch_collection(opts(srv, into, collection=SMALL))
    (into / "small.pdf").write_bytes(b"%PDF-1.4 tampered")
    summary = fetch_collection(opts(srv, into, collection=SMALL))
    assert summary.fetched == ("small.pdf",)
    assert srv.hits["/media/s1/small.pdf"] == 2
    assert (into / "small.pdf").read_bytes() == pdf_bytes("small")
    (into / "small.pdf").unlink()
    assert fetch_collection(opts(srv, into, collection=SMALL)).fetched == ("small.pdf",)


def test_dry_run_writes_nothing(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    summary = fetch_collection(opts(srv, into, dry_run=True))
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
    fetch_collection(opts(srv, into, collection=SMALL))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in into.iterdir())
    summary = fetch_collection(opts(srv, into, collection=SMALL, dry_run=True))
    assert summary.skipped == ("small.pdf",)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in into.iterdir()) == before


def test_limit_follows_at_most_n_publications(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    summary = fetch_collection(opts(srv, into, limit=1))
    assert sorted(summary.fetched) == ["Alpha_Annex.pdf", "alpha-report.pdf"]
    assert srv.hits["/api/content/government/publications/beta"] == 0
    assert srv.count("/api/content/government/publications/") == 1
    assert fetch_collection(opts(srv, tmp_path / "none", limit=0)).planned == ()


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
    summary = fetch_collection(opts(srv, into, collection=SMALL))
    assert summary.fetched == ("small-2.pdf",)  # the other publication's small.pdf is untouched
    assert (into / "small.pdf").read_bytes() == b"%PDF-1.4 someone else's small"
    rows = rows_of(into)
    assert list(rows) == ["handmade.pdf", "small.pdf", "small-2.pdf"]
    assert rows["handmade.pdf"]["title"] == "Mine" and rows["handmade.pdf"]["sha256"] == "abc"
    assert rows["small-2.pdf"]["sha256"] == sha(pdf_bytes("small"))


def test_updates_metadata_of_skipped_rows(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    fetch_collection(opts(srv, into, collection=SMALL))
    rows = rows_of(into)
    rows["small.pdf"]["title"] = "Stale title"
    write_sources(into / "sources.csv", rows, SOURCES_COLUMNS)
    summary = fetch_collection(opts(srv, into, collection=SMALL))
    assert summary.skipped == ("small.pdf",)
    assert srv.hits["/media/s1/small.pdf"] == 1
    assert rows_of(into)["small.pdf"]["title"] == "Small report"


def test_retry_after_and_backoff_use_sleep(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/r", {"links": {"documents": [{"base_path": "/p/r"}]}})
    srv.add_json("/api/content/p/r", _publication("R", [
        {"title": "Limited", "url": "/media/r1/limited.pdf"},
        {"title": "Busy", "url": "/media/r2/busy.pdf"},
        {"title": "Greedy", "url": "/media/r3/greedy.pdf"},
    ], [], "2020-01-01"))
    srv.add("/media/r1/limited.pdf", Reply(429, b"", (("Retry-After", "7"),)), Reply(200, pdf_bytes("l"), PDF))
    srv.add("/media/r2/busy.pdf", Reply(503, b""), Reply(502, b""), Reply(200, pdf_bytes("b"), PDF))
    srv.add("/media/r3/greedy.pdf", Reply(429, b"", (("Retry-After", "3600"),)))
    sleeps: list[float] = []
    summary = fetch_collection(opts(srv, tmp_path, collection="/c/r", backoff_base=0.5), sleep=sleeps.append)
    assert sorted(summary.fetched) == ["busy.pdf", "limited.pdf"]
    assert sleeps == [7.0, 0.5, 1.0]
    assert "too long" in reason_for(summary, "greedy.pdf")
    assert srv.hits["/media/r3/greedy.pdf"] == 1


def test_pause_between_requests(srv: FakeGovUK, tmp_path: Path) -> None:
    sleeps: list[float] = []
    fetch_collection(opts(srv, tmp_path, collection=SMALL, pause=5.0), sleep=sleeps.append)
    assert len(sleeps) == 2  # collection, publication, file: two gaps
    assert all(4.0 < s <= 5.0 for s in sleeps)


def test_gives_up_after_attempts_on_5xx(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/down", {"links": {"documents": [{"base_path": "/p/down"}]}})
    srv.add_json("/api/content/p/down", _publication("D", [{"title": "D", "url": "/media/x/down.pdf"}], [], ""))
    srv.add("/media/x/down.pdf", Reply(500, b""))
    summary = fetch_collection(opts(srv, tmp_path, collection="/c/down", attempts=3))
    assert "HTTP 500" in reason_for(summary, "down.pdf") and "3 attempts" in reason_for(summary, "down.pdf")
    assert srv.hits["/media/x/down.pdf"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_timeout_counts_as_failure(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/slow", {"links": {"documents": [{"base_path": "/p/slow"}]}})
    srv.add_json("/api/content/p/slow", _publication("S", [{"title": "S", "url": "/media/x/slow.pdf"}], [], ""))
    srv.add("/media/x/slow.pdf", Reply(200, pdf_bytes("slow"), PDF, delay=1.0))
    started = time.monotonic()
    summary = fetch_collection(opts(srv, tmp_path, collection="/c/slow", timeout=0.2, attempts=1))
    assert time.monotonic() - started < 0.9
    assert "timed out" in reason_for(summary, "slow.pdf")
    assert not (tmp_path / "slow.pdf").exists()


def test_redirect_within_allowed_hosts_is_followed(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/redir", {"links": {"documents": [{"base_path": "/p/redir"}]}})
    srv.add_json("/api/content/p/redir", _publication("R", [{"title": "R", "url": "/media/r/old.pdf"}], [], ""))
    srv.add("/media/r/old.pdf", Reply(301, b"", (("Location", "/media/r/new.pdf"),)))
    srv.add_pdf("/media/r/new.pdf", pdf_bytes("moved"))
    summary = fetch_collection(opts(srv, tmp_path, collection="/c/redir"))
    assert summary.fetched == ("old.pdf",)
    assert (tmp_path / "old.pdf").read_bytes() == pdf_bytes("moved")


def test_asset_host_option_allows_another_loopback_host(srv: FakeGovUK, tmp_path: Path) -> None:
    srv.add_json("/api/content/c/other", {"links": {"documents": [{"base_path": "/p/other"}]}})
    srv.add_json("/api/content/p/other", _publication(
        "O", [{"title": "O", "url": f"http://localhost:{srv.port}/media/s1/small.pdf"}], [], ""))
    refused = fetch_collection(opts(srv, tmp_path / "a", collection="/c/other"))
    assert "not allowed" in reason_for(refused, "small.pdf") and srv.hits["/media/s1/small.pdf"] == 0
    allowed = fetch_collection(opts(srv, tmp_path / "b", collection="/c/other", asset_hosts=("localhost",)))
    assert allowed.fetched == ("small.pdf",)


def test_refuses_to_write_through_symlink_outside(srv: FakeGovUK, tmp_path: Path) -> None:
    into = tmp_path / "official"
    into.mkdir()
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"precious")
    (into / "small.pdf").symlink_to(outside)
    summary = fetch_collection(opts(srv, into, collection=SMALL))
    assert "outside" in reason_for(summary, "small.pdf")
    assert outside.read_bytes() == b"precious"
    assert srv.hits["/media/s1/small.pdf"] == 0


def test_http_to_non_loopback_api_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="plain http"):
        fetch_collection(FetchOptions(into=tmp_path, api_base="http://www.gov.uk/api/content", pause=0))
    assert list(tmp_path.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_raises_clear_fetch_error(tmp_path: Path) -> None:
    port = _closed_port()
    options = FetchOptions(into=tmp_path / "o", api_base=f"http://127.0.0.1:{port}/api/content",
                           pause=0, backoff_base=0, progress=False)
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch_collection(options)
    message = str(info.value)
    assert message.startswith("cannot reach 127.0.0.1: are you offline?")
    assert "\n" not in message and "--api-base" in message
    assert time.monotonic() - started < 2
    assert not (tmp_path / "o").exists()


def test_unreachable_classification() -> None:
    assert fetch._unreachable_detail(socket.gaierror(-2, "Name or service not known")) is not None
    assert fetch._unreachable_detail(ConnectionRefusedError(111, "refused")) == "connection refused"
    assert fetch._unreachable_detail(TimeoutError("slow")) is None


def test_collection_errors_raise_fetch_error(srv: FakeGovUK, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_collection(opts(srv, tmp_path, collection="/government/collections/nope"))
    srv.add("/api/content/c/bad", Reply(200, b"{not json"))
    with pytest.raises(FetchError, match="not valid JSON"):
        fetch_collection(opts(srv, tmp_path, collection="/c/bad"))


# ---------------------------------------------------------------------------
# CLI glue
# ---------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qa fetch")
    configure_parser(parser)
    return parser.parse_args(argv)


def test_parser_defaults() -> None:
    args = _parse([])
    assert args.collection == fetch.DEFAULT_COLLECTION
    assert Path(args.into) == Path("corpus/official")
    assert (args.limit, args.dry_run, args.pause, args.timeout, args.max_mb) == (None, False, 1.0, 30.0, 100.0)
    assert args.api_base is None and args.asset_host == []


@pytest.mark.parametrize("argv", [["--limit", "-1"], ["--pause", "x"], ["--max-mb", "0"], ["--timeout", "-3"]])
def test_parser_rejects_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(argv)


def test_options_from_args_env_and_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_GOVUK_API", "http://127.0.0.1:1/api")
    options = fetch.options_from_args(_parse(["--asset-host", "a.example", "--asset-host", "b.example",
                                              "--max-mb", "0.5"]))
    assert options.api_base == "http://127.0.0.1:1/api"
    assert options.asset_hosts == ("a.example", "b.example")
    assert options.max_bytes == 512 * 1024
    assert fetch.options_from_args(_parse(["--api-base", "https://mirror.example/api"])).api_base == \
        "https://mirror.example/api"
    monkeypatch.delenv("QA_GOVUK_API")
    assert fetch.options_from_args(_parse([])).api_base == fetch.DEFAULT_API_BASE


def test_run_prints_summary_and_returns_exit_code(
    srv: FakeGovUK, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--pause", "0", "--backoff", "0", "--max-mb", "0.001"]
    ok = _parse(["--into", str(tmp_path / "ok"), "--api-base", srv.api, "--collection", SMALL, *common])
    assert run(ok) == 0
    out = capsys.readouterr().out
    assert out.startswith("fetched 1, skipped 0 (already present), failed 0")
    assert (tmp_path / "ok" / "small.pdf").exists()

    monkeypatch.setenv("QA_GOVUK_API", srv.api)  # the env var stands in for --api-base
    bad = _parse(["--into", str(tmp_path / "bad"), "--collection", COLLECTION, "--limit", "2", *common])
    assert run(bad) == 1
    out = capsys.readouterr().out
    assert "fetched 3, skipped 0 (already present), failed 4" in out
    assert "FAILED missing.pdf" in out

    dry = _parse(["--into", str(tmp_path / "dry"), "--collection", SMALL, "--dry-run", *common])
    assert run(dry) == 0
    assert "would fetch 1 file(s)" in capsys.readouterr().out
    assert not (tmp_path / "dry").exists()


def test_run_lets_fetch_error_propagate(tmp_path: Path) -> None:
    args = _parse(["--into", str(tmp_path), "--api-base", f"http://127.0.0.1:{_closed_port()}/api/content",
                   "--pause", "0"])
    with pytest.raises(FetchError, match="are you offline"):
        run(args)


def test_summary_dataclasses_are_frozen() -> None:
    summary = FetchSummary()
    with pytest.raises(AttributeError):
        summary.fetched = ("x",)  # type: ignore[misc]
    assert replace(summary, failed=(Failure("u", "r"),)).exit_code == 1
