"""The plan of a fetch: GOV.UK collection -> publications -> PDF attachments -> file names.

GOV.UK serves every page as JSON under ``/api/content/<path>``: a collection
links its publications, a publication lists its attachments. Everything here is
pure, and distrusts the JSON: a field of the wrong type makes the publication
a failure with a reason instead of crashing the fetch.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FetchError
from ..sources import parse_year

log = logging.getLogger(__name__)

WEB_BASE = "https://www.gov.uk"
DEFAULT_PUBLISHER = "Department for Education"
LICENCE = "Open Government Licence v3.0"
MAX_NAME = 100
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))}


class Skip(Exception):
    """This item cannot be fetched; the message says why."""


@dataclass(frozen=True)
class Attachment:
    """A PDF attachment of one publication, with the metadata for its ``sources.csv`` row."""

    url: str
    name: str  # suggested file name, unsanitised
    title: str
    authors: str
    year: int | None
    publisher: str
    page_url: str  # the publication's GOV.UK page, cited as the source


@dataclass(frozen=True)
class PlannedFile:
    """An attachment with the file name it is saved under."""

    path: str
    attachment: Attachment

    def row(self, sha256: str) -> dict[str, str]:
        """The ``sources.csv`` row of this file."""
        a = self.attachment
        return {"path": self.path, "title": a.title, "authors": a.authors, "year": "" if a.year is None else str(a.year),
                "publisher": a.publisher, "url": a.page_url, "licence": LICENCE, "sha256": sha256}


def _text(value: object) -> str:
    """A JSON string with its whitespace collapsed (one CSV line); anything else is empty."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def _field(doc: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    """``doc[key]`` when absent or of ``kind`` (absent: an empty one); Skip otherwise."""
    value = doc.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise Skip(f"malformed Content API reply: {what} is a {type(value).__name__}")
    return value


def normalise_base_path(path: str) -> str:
    """A GOV.UK base path (``/government/...``) from a path or a www.gov.uk URL; FetchError otherwise."""
    text = path.strip()
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        if (parts.hostname or "").lower() != "www.gov.uk":
            raise FetchError(f"collection {path!r}: give a www.gov.uk URL or a path like /government/collections/...")
        text = parts.path
    text = "/" + text.strip("/")
    decoded = urllib.parse.unquote(text)
    if text == "/" or re.search(r"[?#\\\x00-\x1f\x7f]", decoded) or {".", ".."} & set(decoded.split("/")):
        raise FetchError(f"collection {path!r}: not a GOV.UK path; give one like /government/collections/...")
    return text


def api_url(api_base: str, base_path: str) -> str:
    """The Content API URL of a page."""
    return api_base.rstrip("/") + urllib.parse.quote(base_path, safe="/-._~%")


def collection_documents(doc: Mapping[str, Any]) -> list[str]:
    """The base paths of the publications a collection links to, deduplicated, in order."""
    if not isinstance(doc, dict):
        raise Skip("malformed Content API reply: not a JSON object")
    seen: list[str] = []
    for item in _field(_field(doc, "links", dict, "links"), "documents", list, "links.documents"):
        raw = item.get("base_path") if isinstance(item, dict) else None
        try:
            if not isinstance(raw, str) or "://" in raw:
                raise FetchError("not a path")
            base_path = normalise_base_path(raw)
        except FetchError:
            log.warning("collection entry without a usable GOV.UK base_path skipped: %r", raw)
            continue
        if base_path not in seen:
            seen.append(base_path)
    return seen


def publication_attachments(doc: Any, base_path: str, origin: str = WEB_BASE) -> tuple[list[Attachment], list[str]]:
    """The PDF attachments of a publication, and the URLs of its other attachments.

    Relative URLs resolve against ``origin`` (www.gov.uk, or the mirror the API
    is read from); the cited URL is always the GOV.UK page. Skip on malformed JSON.
    """
    if not isinstance(doc, dict):
        raise Skip("malformed Content API reply: not a JSON object")
    links = _field(doc, "links", dict, "links")
    orgs = [t for org in _field(links, "organisations", list, "links.organisations")
            if isinstance(org, dict) and (t := _text(org.get("title")))]
    year = parse_year(doc.get("first_published_at")) or parse_year(doc.get("public_updated_at"))
    pdfs: list[Attachment] = []
    others: list[str] = []
    for att in _field(_field(doc, "details", dict, "details"), "attachments", list, "details.attachments"):
        if not isinstance(att, dict) or not _text(att.get("url")):
            continue
        url = urllib.parse.urljoin(origin + "/", att["url"].strip())
        path = urllib.parse.urlsplit(url).path
        if _text(att.get("content_type")).split(";")[0].lower() != "application/pdf" and not path.lower().endswith(".pdf"):
            others.append(url)
            continue
        pdfs.append(Attachment(
            url=url, name=_text(att.get("filename")) or urllib.parse.unquote(path.rsplit("/", 1)[-1]),
            title=_text(att.get("title")) or _text(doc.get("title")), authors="; ".join(orgs), year=year,
            publisher=orgs[0] if orgs else DEFAULT_PUBLISHER, page_url=WEB_BASE + base_path))
    return pdfs, others


def sanitise_filename(name: str, fallback: str = "document") -> str:
    """A safe, portable ``*.pdf`` name from an untrusted one.

    Basename only, ASCII, ``[A-Za-z0-9._-]``, no ``..``, no leading dot or dash
    (no hidden files, nothing that looks like an option), no Windows device name.
    """

    def clean(text: str) -> str:
        text = re.split(r"[/\\]", unicodedata.normalize("NFKD", text))[-1].encode("ascii", "ignore").decode()
        text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", text))
        text = text[:-4] if text.lower().endswith(".pdf") else text
        return re.sub(r"_{2,}", "_", text).strip("._-")

    stem = (clean(name) or clean(fallback) or "document")[: MAX_NAME - 5].rstrip("._-") or "document"
    head, dot, rest = stem.partition(".")
    return (f"{head}_{dot}{rest}" if head.upper() in _RESERVED else stem) + ".pdf"


def plan_files(attachments: Iterable[Attachment], rows: Mapping[str, Mapping[str, str]],
               on_disk: Collection[str] = ()) -> tuple[list[PlannedFile], list[str]]:
    """A unique file name for each attachment, and a note for each file kept aside.

    Names are deterministic, so a rerun maps each attachment to the same file. A
    name is taken (case-insensitively, as on macOS and Windows) when another
    publication's row holds it, or a file of that name is on disk and not in
    ``sources.csv``: the fetch never overwrites a file it did not write.
    """
    listed = {p.lower() for p in rows}
    foreign = {p.lower(): (r.get("url") or "") for p, r in rows.items()}
    unlisted = {n.lower() for n in on_disk} - listed
    used: set[str] = set()
    planned: list[PlannedFile] = []
    notes: list[str] = []
    for att in attachments:
        first = sanitise_filename(att.name, fallback=att.page_url.rstrip("/").rsplit("/", 1)[-1])
        taken = used | unlisted | {p for p, url in foreign.items() if url != att.page_url}
        name, n = first, 2
        while name.lower() in taken:
            suffix = f"-{n}.pdf"
            name, n = first[:-4][: MAX_NAME - len(suffix)] + suffix, n + 1
        if name != first and first.lower() in unlisted:
            notes.append(f"kept {first} (not in sources.csv, so not ours); saving the download as {name}")
        used.add(name.lower())
        planned.append(PlannedFile(name, att))
    return planned, notes
