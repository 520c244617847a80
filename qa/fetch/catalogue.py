"""The plan of a fetch: GOV.UK collection -> publications -> PDF attachments -> file names.

GOV.UK serves each page as JSON under ``/api/content/<path>``. Nothing here does I/O or trusts that JSON: a
field of the wrong type fails its publication with a reason (Skip), never the whole fetch."""

from __future__ import annotations

import logging
import re
import unicodedata
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import FetchError
from ..sources import parse_year

log = logging.getLogger(__name__)

WEB_BASE = "https://www.gov.uk"
LICENCE = "Open Government Licence v3.0"
MAX_NAME = 100
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))}


class Skip(Exception):
    """This item cannot be fetched; the message says why."""


@dataclass(frozen=True)
class Attachment:
    """A PDF attachment of one publication: its URL, its ``sources.csv`` metadata and, once planned, its file name."""

    url: str
    name: str  # suggested file name, unsanitised
    title: str
    authors: str
    year: int | None
    publisher: str
    page_url: str  # the publication's GOV.UK page, cited as the source
    path: str = ""  # the file name it is saved under

    def row(self, sha256: str) -> dict[str, str]:
        return {"path": self.path, "title": self.title, "authors": self.authors, "year": str(self.year or ""),
                "publisher": self.publisher, "url": self.page_url, "licence": LICENCE, "sha256": sha256}


def _text(value: object) -> str:  # a JSON string on one line; anything else is empty
    return " ".join(value.split()) if isinstance(value, str) else ""


def _field(doc: Any, key: str, kind: type) -> Any:
    """``doc[key]``, empty if absent; Skip when either is of the wrong type."""
    if not isinstance(doc, dict):
        raise Skip(f"malformed Content API reply: a {type(doc).__name__} where an object belongs")
    if (value := doc.get(key)) is not None and not isinstance(value, kind):
        raise Skip(f"malformed Content API reply: {key} is a {type(value).__name__}")
    return kind() if value is None else value


def normalise_base_path(path: str) -> str:
    """A GOV.UK base path (``/government/...``) from a path or a www.gov.uk URL; FetchError otherwise."""
    text, parts = path.strip(), urllib.parse.urlsplit(path.strip())
    text = "/" + (parts.path if "://" in text and (parts.hostname or "").lower() == "www.gov.uk" else text).strip("/")
    decoded = urllib.parse.unquote(text)
    if text == "/" or ":" in text or re.search(r"[?#\\\x00-\x1f\x7f]", decoded) or {".", ".."} & set(decoded.split("/")):
        raise FetchError(f"collection {path!r} is not a GOV.UK page; give a path like /government/collections/...")
    return text


def collection_documents(doc: Any) -> list[str]:
    """The base paths of the publications a collection links to, deduplicated, in order."""
    paths: dict[str, None] = {}
    for item in _field(_field(doc, "links", dict), "documents", list):
        raw = item.get("base_path") if isinstance(item, dict) else None
        try:
            paths[normalise_base_path(raw if isinstance(raw, str) else ":")] = None
        except FetchError:
            log.warning("collection entry without a usable GOV.UK base_path skipped: %r", raw)
    return list(paths)


def publication_attachments(doc: Any, base_path: str, origin: str = WEB_BASE) -> list[Attachment]:
    """The PDF attachments of a publication; relative URLs resolve against ``origin`` (www.gov.uk, or the
    mirror the API is read from), while the cited URL is always the GOV.UK page."""
    orgs = [t for org in _field(_field(doc, "links", dict), "organisations", list)
            if (t := _text(org.get("title") if isinstance(org, dict) else None))]
    year = parse_year(doc.get("first_published_at")) or parse_year(doc.get("public_updated_at"))
    pdfs: list[Attachment] = []
    for att in _field(_field(doc, "details", dict), "attachments", list):
        if not isinstance(att, dict) or not _text(att.get("url")):
            continue
        url = urllib.parse.urljoin(origin + "/", att["url"].strip())
        path = urllib.parse.urlsplit(url).path
        if _text(att.get("content_type")).split(";")[0].lower() != "application/pdf" and path[-4:].lower() != ".pdf":
            log.info("not a PDF, so not fetched: %s", url)
            continue
        pdfs.append(Attachment(
            url, _text(att.get("filename")) or urllib.parse.unquote(path.rsplit("/", 1)[-1]),
            _text(att.get("title")) or _text(doc.get("title")), "; ".join(orgs), year,
            orgs[0] if orgs else "Department for Education", WEB_BASE + base_path))
    return pdfs


def sanitise_filename(name: str, fallback: str = "document") -> str:
    """A safe ``*.pdf`` name: basename, ASCII ``[A-Za-z0-9._-]``, no ``..``, leading dot or dash, or device name."""

    def clean(text: str) -> str:
        text = re.split(r"[/\\]", unicodedata.normalize("NFKD", text))[-1].encode("ascii", "ignore").decode()
        text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", text))
        return re.sub(r"_{2,}", "_", text[:-4] if text.lower().endswith(".pdf") else text).strip("._-")

    stem = (clean(name) or clean(fallback) or "document")[: MAX_NAME - 5].rstrip("._-") or "document"
    head, dot, rest = stem.partition(".")
    return (f"{head}_{dot}{rest}" if head.upper() in _RESERVED else stem) + ".pdf"


def plan_files(attachments: Iterable[Attachment], rows: Mapping[str, Mapping[str, str]],
               on_disk: Collection[str] = ()) -> tuple[list[Attachment], list[str]]:
    """Each attachment with a unique file name (the same on every run), and a note for each file kept aside.

    A name is taken (ignoring case, as macOS and Windows do) if another publication's row holds it, or a file
    of that name is on disk but not in ``sources.csv``: the fetch never overwrites a file it did not write."""
    unlisted = {n.lower() for n in on_disk} - {p.lower() for p in rows}
    planned: list[Attachment] = []
    notes: list[str] = []
    for att in attachments:
        first = sanitise_filename(att.name, fallback=att.page_url.rstrip("/").rsplit("/", 1)[-1])
        taken = {p.path.lower() for p in planned} | unlisted
        taken |= {p.lower() for p, row in rows.items() if row.get("url", "") != att.page_url}
        name, n = first, 2
        while name.lower() in taken:
            name, n = f"{first[:-4][: MAX_NAME - 4 - len(str(n))]}-{n}.pdf", n + 1
        if name != first and first.lower() in unlisted:
            notes.append(f"kept {first} (not in sources.csv, so not ours); saving the download as {name}")
        planned.append(replace(att, path=name))
    return planned, notes
