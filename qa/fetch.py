"""``qa fetch``: download the official corpus from GOV.UK's Content API.

The Children's Social Care Innovation Programme evaluation reports are gathered
in one GOV.UK collection. GOV.UK serves every page as JSON under
``/api/content/<path>``: the collection lists its publications, each
publication lists its attachments. We follow the collection, download the PDF
attachments into ``corpus/official/`` and record each file's bibliographic
metadata and sha256 in that folder's ``sources.csv``, which ingest reads.

The module is split in two: pure helpers (URL checks, file name sanitising,
planning, retry delays, CSV merging) that are unit tested directly, and a small
HTTP client plus :func:`fetch_collection` that do the I/O. Only the standard
library is used for HTTP, so the fetch adds no dependency.

Safety rules, enforced on every request and every redirect hop: https only
(plain http only for loopback hosts, so tests and local mirrors work), and only
hosts on an allow-list. Downloads go to a temporary file in the target folder
and are moved into place only once complete, so an interrupted or truncated
download never leaves a half PDF behind.
"""

from __future__ import annotations

import argparse
import csv
import email.utils
import errno
import hashlib
import http.client
import io
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from qa.errors import FetchError
from qa.readers import sha256_file

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = (
    "/government/collections/childrens-social-care-innovation-programme-insights-and-evaluation"
)
DEFAULT_API_BASE = "https://www.gov.uk/api/content"
API_BASE_ENV = "QA_GOVUK_API"
DEFAULT_INTO = Path("corpus") / "official"
WEB_BASE = "https://www.gov.uk"
DEFAULT_ASSET_HOSTS = ("www.gov.uk", "assets.publishing.service.gov.uk")
DEFAULT_PUBLISHER = "Department for Education"
LICENCE = "Open Government Licence v3.0"
SOURCES_FILE = "sources.csv"
SOURCES_COLUMNS = ("path", "title", "authors", "year", "publisher", "url", "licence", "sha256")
USER_AGENT = "evidence-qa-fetch/1 (+research use; polite, resumable)"

MAX_NAME_LENGTH = 100
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK_SIZE = 64 * 1024
PDF_MAGIC = b"%PDF-"
TEMP_PREFIX = ".fetch-"
TEMP_SUFFIX = ".part"

_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}
)

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchOptions:
    """Everything one fetch needs; the CLI builds it from its arguments."""

    into: Path = DEFAULT_INTO
    collection: str = DEFAULT_COLLECTION
    api_base: str = DEFAULT_API_BASE
    asset_hosts: tuple[str, ...] = ()
    limit: int | None = None
    dry_run: bool = False
    pause: float = 1.0
    timeout: float = 30.0
    max_bytes: int = 100 * 1024 * 1024
    attempts: int = 4
    backoff_base: float = 1.0
    max_retry_after: float = 60.0
    progress: bool | None = None  # None: only when stderr is a terminal


@dataclass(frozen=True)
class Attachment:
    """A PDF attachment of one publication, with the metadata for its CSV row."""

    url: str  # absolute download URL
    name: str  # suggested file name, unsanitised
    title: str
    authors: str
    year: int | None
    publisher: str
    page_url: str  # the publication's GOV.UK page, cited as the source


@dataclass(frozen=True)
class PlannedFile:
    """An attachment with the file name it is saved under in the target folder."""

    path: str
    attachment: Attachment

    def row(self, sha256: str) -> dict[str, str]:
        """The ``sources.csv`` row for this file."""
        a = self.attachment
        return {
            "path": self.path,
            "title": a.title,
            "authors": a.authors,
            "year": "" if a.year is None else str(a.year),
            "publisher": a.publisher,
            "url": a.page_url,
            "licence": LICENCE,
            "sha256": sha256,
        }


@dataclass(frozen=True)
class Failure:
    """Something that could not be fetched, and why."""

    url: str
    reason: str
    path: str = ""


@dataclass(frozen=True)
class FetchSummary:
    """The outcome of one fetch; ``fetched`` and ``skipped`` hold file paths."""

    fetched: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[Failure, ...] = ()
    ignored: tuple[str, ...] = ()  # non-PDF attachment URLs
    planned: tuple[PlannedFile, ...] = ()
    dry_run: bool = False
    into: str = ""

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0


# ---------------------------------------------------------------------------
# Pure helpers: URLs
# ---------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http may reach."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"refused URL {url!r}: bad port") from exc
    return (parts.hostname or "").lower(), port


def normalise_host(entry: str) -> str:
    """An allow-list entry as ``host`` or ``host:port``, lower case, no scheme."""
    entry = entry.strip().lower()
    if "//" in entry:
        entry = urllib.parse.urlsplit(entry).netloc
    return entry.rstrip("/")


def _host_allowed(host: str, port: int | None, allowed: Collection[str]) -> bool:
    for entry in allowed:
        entry = normalise_host(entry)
        if entry == host:
            return True
        if port is not None and entry == f"{host}:{port}":
            return True
        if port is not None and entry == f"[{host}]:{port}":
            return True
    return False


def check_url(url: str, allowed_hosts: Collection[str]) -> str | None:
    """Why ``url`` may not be fetched, or None when it may.

    Allowed: https to a host in ``allowed_hosts`` (entries ``host`` or
    ``host:port``); plain http only when that host is also a loopback host.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"scheme {scheme or '(none)'!r} is not https"
    if parts.username is not None or parts.password is not None:
        return "URL carries credentials"
    host = (parts.hostname or "").lower()
    if not host:
        return "URL has no host"
    try:
        port = parts.port
    except ValueError:
        return "URL has a bad port"
    if scheme == "http" and not is_loopback_host(host):
        return f"plain http to {host} (https required except for loopback hosts)"
    if not _host_allowed(host, port, allowed_hosts):
        return f"host {host} is not allowed"
    return None


def origin_of(url: str) -> str:
    """``scheme://netloc`` of ``url``: relative attachment URLs resolve against the API's origin."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def requote_url(url: str) -> str:
    """Percent-encode characters urllib would refuse (spaces, controls, non-ASCII).

    Existing ``%XX`` escapes are kept, so quoting is idempotent.
    """
    parts = urllib.parse.urlsplit(url)
    safe = "/%:@!$&'()*+,;=-._~"
    path = urllib.parse.quote(parts.path, safe=safe)
    query = urllib.parse.quote(parts.query, safe=safe + "?")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def normalise_base_path(path: str) -> str:
    """A GOV.UK base path (``/government/...``) from a path or a www.gov.uk URL.

    Raises FetchError for anything else (other hosts, ``..``, queries), since the
    result is appended to the API root.
    """
    text = path.strip()
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        if (parts.hostname or "").lower() != "www.gov.uk":
            raise FetchError(f"collection {path!r}: expected a www.gov.uk URL or a path like /government/...")
        text = parts.path
    if not text.startswith("/"):
        text = "/" + text
    text = text.rstrip("/") or "/"
    decoded = urllib.parse.unquote(text)
    segments = decoded.split("/")
    if (
        any(seg in (".", "..") for seg in segments)
        or "?" in text
        or "#" in text
        or "\\" in decoded
        or any(ord(c) < 32 or ord(c) == 127 for c in decoded)
        or text == "/"
    ):
        raise FetchError(f"collection {path!r}: not a valid GOV.UK path")
    return text


def api_url(api_base: str, base_path: str) -> str:
    """The Content API URL of a page."""
    return api_base.rstrip("/") + urllib.parse.quote(base_path, safe="/-._~%")


# ---------------------------------------------------------------------------
# Pure helpers: file names
# ---------------------------------------------------------------------------


def sanitise_filename(name: str, fallback: str = "document", max_length: int = MAX_NAME_LENGTH) -> str:
    """A safe, portable ``*.pdf`` file name derived from an untrusted one.

    Keeps the basename only, folds to ASCII, replaces anything outside
    ``[A-Za-z0-9._-]`` with ``_``, collapses dot runs (no ``..``), strips
    leading dots/dashes/underscores (no hidden files, nothing that looks like an
    option), avoids Windows device names, limits the length and forces ``.pdf``.
    """

    def clean(text: str) -> str:
        text = unicodedata.normalize("NFKD", text)
        text = re.split(r"[/\\]", text)[-1]
        text = text.encode("ascii", "ignore").decode("ascii")
        text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
        text = re.sub(r"\.{2,}", ".", text)
        if text.lower().endswith(".pdf"):
            text = text[:-4]
        text = re.sub(r"_{2,}", "_", text)
        return text.strip("._-")

    max_length = max(max_length, 12)
    stem = clean(name) or clean(fallback) or "document"
    stem = stem[: max_length - 5].rstrip("._-") or "document"
    head, dot, rest = stem.partition(".")
    if head.upper() in _WINDOWS_RESERVED:  # CON.pdf, nul.x.pdf: device names on Windows
        stem = f"{head}_{dot}{rest}"
    return stem + ".pdf"


def unique_name(name: str, taken: Collection[str], max_length: int = MAX_NAME_LENGTH) -> str:
    """``name`` or ``name-2.pdf``, ``name-3.pdf``...: the first not in ``taken``.

    ``taken`` holds lower-cased names, so names differing only in case collide
    (as they would on macOS or Windows).
    """
    if name.lower() not in taken:
        return name
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    n = 2
    while True:
        suffix = f"-{n}.pdf"
        candidate = stem[: max(max_length - len(suffix), 1)] + suffix
        if candidate.lower() not in taken:
            return candidate
        n += 1


# ---------------------------------------------------------------------------
# Pure helpers: planning
# ---------------------------------------------------------------------------


def _clean_text(value: Any) -> str:
    """Collapse whitespace (titles must stay on one CSV line)."""
    return " ".join(str(value).split()) if value else ""


def collection_documents(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(base_path, title)`` of each publication linked from a collection, deduplicated.

    Entries without a usable base path are dropped with a warning.
    """
    links = doc.get("links") or {}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for item in links.get("documents") or []:
        if not isinstance(item, Mapping):
            continue
        raw = item.get("base_path")
        if not isinstance(raw, str) or "://" in raw:
            logger.warning("collection entry without a GOV.UK base_path skipped: %r", raw)
            continue
        try:
            base_path = normalise_base_path(raw)
        except FetchError:
            logger.warning("collection entry with an invalid base_path skipped: %r", raw)
            continue
        if base_path in seen:
            continue
        seen.add(base_path)
        out.append((base_path, _clean_text(item.get("title"))))
    return out


def is_pdf_attachment(att: Mapping[str, Any]) -> bool:
    """PDF by declared content type or by a URL ending in ``.pdf``."""
    content_type = str(att.get("content_type") or "").split(";")[0].strip().lower()
    path = urllib.parse.urlsplit(str(att.get("url") or "")).path.lower()
    return content_type == "application/pdf" or path.endswith(".pdf")


def _year(value: Any) -> int | None:
    match = re.match(r"\s*(\d{4})", str(value or ""))
    return int(match.group(1)) if match else None


def publication_attachments(
    doc: Mapping[str, Any], base_path: str, origin: str = WEB_BASE
) -> tuple[list[Attachment], list[str]]:
    """The PDF attachments of a publication, and the URLs of the other attachments.

    Relative attachment URLs resolve against ``origin`` (www.gov.uk, or the
    mirror the API is read from). The cited URL is always the GOV.UK page.
    """
    details = doc.get("details") or {}
    links = doc.get("links") or {}
    orgs = [
        _clean_text(org.get("title"))
        for org in links.get("organisations") or []
        if isinstance(org, Mapping) and _clean_text(org.get("title"))
    ]
    pub_title = _clean_text(doc.get("title"))
    year = _year(doc.get("first_published_at")) or _year(doc.get("public_updated_at"))
    page_url = WEB_BASE + base_path
    pdfs: list[Attachment] = []
    others: list[str] = []
    for att in details.get("attachments") or []:
        if not isinstance(att, Mapping) or not att.get("url"):
            continue
        url = urllib.parse.urljoin(origin + "/", str(att["url"]).strip())
        if not is_pdf_attachment(att):
            others.append(url)
            continue
        url_name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        pdfs.append(
            Attachment(
                url=requote_url(url),
                name=str(att.get("filename") or url_name),
                title=_clean_text(att.get("title")) or pub_title,
                authors="; ".join(orgs),
                year=year,
                publisher=orgs[0] if orgs else DEFAULT_PUBLISHER,
                page_url=page_url,
            )
        )
    return pdfs, others


def plan_files(
    attachments: Iterable[Attachment], existing: Mapping[str, Mapping[str, str]]
) -> list[PlannedFile]:
    """Give each attachment a unique, sanitised file name.

    Names are deterministic for a given collection order, so reruns map each
    attachment to the same file. A name recorded in ``existing`` for another
    publication is treated as taken, so a fetch never clobbers it.
    """
    used: set[str] = set()
    planned: list[PlannedFile] = []
    foreign = {
        path.lower(): str(row.get("url") or "") for path, row in existing.items()
    }
    for att in attachments:
        slug = att.page_url.rstrip("/").rsplit("/", 1)[-1]
        name = sanitise_filename(att.name, fallback=slug)
        taken = used | {p for p, url in foreign.items() if url != att.page_url}
        name = unique_name(name, taken)
        used.add(name.lower())
        planned.append(PlannedFile(path=name, attachment=att))
    return planned


def retry_delay(
    attempt: int, backoff_base: float, retry_after: str | None = None, max_retry_after: float = 60.0
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential backoff ``base * 2**(attempt-1)``, unless the server sent a
    Retry-After (seconds or HTTP date): that is honoured when at most
    ``max_retry_after``; longer, the result is None (give up, don't hang).
    """
    backoff = backoff_base * (2 ** (attempt - 1))
    if not retry_after:
        return backoff
    value = retry_after.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return backoff
        if when is None:
            return backoff
        seconds = max(0.0, when.timestamp() - time.time())
    if seconds > max_retry_after:
        return None
    return seconds


# ---------------------------------------------------------------------------
# sources.csv
# ---------------------------------------------------------------------------


def read_sources(path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Rows of a ``sources.csv`` keyed by path, and its column names (empty if absent)."""
    if not path.exists():
        return {}, list(SOURCES_COLUMNS)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fieldnames = list(reader.fieldnames or [])
        if "path" not in fieldnames:
            raise FetchError(f"{path}: no 'path' column; fix the header or move the file away")
        rows: dict[str, dict[str, str]] = {}
        for row in reader:
            key = (row.get("path") or "").strip()
            if key:
                rows[key] = {k: (v or "") for k, v in row.items() if k is not None}
    columns = list(SOURCES_COLUMNS) + [c for c in fieldnames if c not in SOURCES_COLUMNS]
    return rows, columns


def merge_rows(
    existing: Mapping[str, Mapping[str, str]], updates: Iterable[Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Existing rows with ``updates`` applied by path: updated in place, new ones appended."""
    merged = {path: dict(row) for path, row in existing.items()}
    for row in updates:
        merged.setdefault(row["path"], {}).update(row)
    return merged


def render_sources(rows: Mapping[str, Mapping[str, str]], columns: Sequence[str]) -> str:
    """CSV text of the rows, with a header."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows.values():
        writer.writerow({c: row.get(c, "") for c in columns})
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(Path(tmp))
        raise
    _fsync_dir(path.parent)


def write_sources(path: Path, rows: Mapping[str, Mapping[str, str]], columns: Sequence[str]) -> None:
    """Write ``sources.csv`` atomically."""
    _write_atomic(path, render_sources(rows, columns).encode("utf-8"))


def is_present(folder: Path, planned: PlannedFile, existing: Mapping[str, Mapping[str, str]]) -> bool:
    """True when the file exists with the sha256 recorded for it in sources.csv."""
    row = existing.get(planned.path)
    recorded = (row or {}).get("sha256", "").strip().lower()
    target = folder / planned.path
    if not recorded or not target.is_file():
        return False
    try:
        return sha256_file(target) == recorded
    except OSError:
        return False


def _inside(folder: Path, name: str) -> Path:
    """``folder/name``, refusing any path that resolves outside ``folder``."""
    root = Path(os.path.realpath(folder))
    target = Path(os.path.realpath(folder / name))
    if target.parent != root:
        raise _Failed(f"refused: {name!r} resolves outside {folder}")
    return folder / name


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # pragma: no cover - best effort
        logger.warning("could not remove %s: %s", path, exc)


def _fsync_dir(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


class _Failed(Exception):
    """This item cannot be fetched; the message is the reason (not retried)."""


class _Transient(Exception):
    """A failure worth retrying (truncated body, reset connection)."""


class _Unreachable(Exception):
    """DNS failure or connection refused: the host is not reachable at all."""

    def __init__(self, host: str, detail: str) -> None:
        super().__init__(f"cannot reach {host}: {detail}")
        self.host = host
        self.detail = detail


class _RefusedRedirect(urllib.error.URLError):
    """A redirect to a URL outside the allow-list."""


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only when its target passes :func:`check_url`."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        super().__init__()
        self.allowed_hosts = allowed_hosts

    def redirect_request(  # type: ignore[override]
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        newurl = requote_url(urllib.parse.urljoin(req.full_url, newurl))
        reason = check_url(newurl, self.allowed_hosts)
        if reason is not None:
            fp.close()
            raise _RefusedRedirect(f"refused redirect to {newurl}: {reason}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _unreachable_detail(reason: object) -> str | None:
    """A short description when ``reason`` means the host cannot be reached at all."""
    if isinstance(reason, socket.gaierror):
        return f"name lookup failed ({reason.strerror or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS:
        return reason.strerror or str(reason)
    return None


class _Client:
    """A polite HTTP client: pauses between requests, retries, checks every hop."""

    def __init__(self, options: FetchOptions, sleep: Callable[[float], None]) -> None:
        self.options = options
        self.sleep = sleep
        self.requests = 0
        self._last: float | None = None

    def _opener(self, url: str, allowed: Collection[str]) -> urllib.request.OpenerDirector:
        host, _ = _host_port(url)
        proxies = urllib.request.ProxyHandler({} if is_loopback_host(host) else None)
        opener = urllib.request.OpenerDirector()
        for handler in (
            proxies,
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            _SafeRedirectHandler(allowed),
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        return opener

    def _wait_turn(self) -> None:
        if self._last is not None and self.options.pause > 0:
            remaining = self.options.pause - (time.monotonic() - self._last)
            if remaining > 0:
                self.sleep(remaining)
        self._last = time.monotonic()

    def request(
        self,
        url: str,
        allowed: Collection[str],
        consume: Callable[[http.client.HTTPResponse], T],
        accept: str = "*/*",
    ) -> T:
        """GET ``url`` and hand the response to ``consume``, retrying transient failures.

        Raises _Failed (give up on this item) or _Unreachable.
        """
        reason = check_url(url, allowed)
        if reason is not None:
            raise _Failed(f"refused {url}: {reason}")
        host, _ = _host_port(url)
        opts = self.options
        attempts = max(1, opts.attempts)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            retry_after: str | None = None
            self._wait_turn()
            self.requests += 1
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": accept})
            try:
                with self._opener(url, allowed).open(req, timeout=opts.timeout) as resp:
                    return consume(resp)
            except _RefusedRedirect as exc:
                raise _Failed(str(exc.reason)) from None
            except urllib.error.HTTPError as exc:
                code = exc.code
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                problem = f"HTTP {code} {exc.reason}".strip()
                if not (code == 429 or 500 <= code < 600):
                    raise _Failed(problem) from None
            except urllib.error.URLError as exc:
                detail = _unreachable_detail(exc.reason)
                if detail is not None:
                    raise _Unreachable(host, detail) from None
                if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                    problem = f"timed out after {opts.timeout:g} s"
                else:
                    problem = f"network error: {exc.reason}"
            except (TimeoutError, socket.timeout):
                problem = f"timed out after {opts.timeout:g} s"
            except _Transient as exc:
                problem = str(exc)
            except (http.client.HTTPException, ConnectionError) as exc:
                problem = f"connection error: {exc.__class__.__name__} {exc}".strip()
            except OSError as exc:
                detail = _unreachable_detail(exc)
                if detail is not None:
                    raise _Unreachable(host, detail) from None
                problem = f"network error: {exc}"
            if last:
                raise _Failed(problem + (f" (after {attempts} attempts)" if attempts > 1 else ""))
            delay = retry_delay(attempt, opts.backoff_base, retry_after, opts.max_retry_after)
            if delay is None:
                raise _Failed(f"{problem}; Retry-After {retry_after!r} is too long to wait")
            logger.info("%s: %s; retry %d/%d in %.1f s", url, problem, attempt, attempts - 1, delay)
            if delay > 0:
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, url: str, allowed: Collection[str]) -> Any:
        """The decoded JSON at ``url``."""

        def consume(resp: http.client.HTTPResponse) -> bytes:
            data = resp.read(MAX_JSON_BYTES + 1)
            if len(data) > MAX_JSON_BYTES:
                raise _Failed(f"{url}: JSON response larger than {MAX_JSON_BYTES} bytes")
            return data

        data = self.request(url, allowed, consume, accept="application/json")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Failed(f"{url}: not valid JSON ({exc})") from None

    def download(self, url: str, allowed: Collection[str], folder: Path) -> tuple[Path, str]:
        """Download a PDF to a temp file in ``folder``; returns (temp path, sha256).

        The temp file is complete, checked and fsynced; the caller moves it into place.
        """
        max_bytes = self.options.max_bytes

        def consume(resp: http.client.HTTPResponse) -> tuple[Path, str]:
            length_header = resp.headers.get("Content-Length")
            expected: int | None = None
            if length_header is not None and length_header.strip().isdigit():
                expected = int(length_header)
                if expected > max_bytes:
                    raise _Failed(f"too large: {expected} bytes > limit {max_bytes} (--max-mb)")
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                size = 0
                head = b""
                with os.fdopen(fd, "wb") as fh:
                    while True:
                        block = resp.read(CHUNK_SIZE)
                        if not block:
                            break
                        size += len(block)
                        if size > max_bytes:
                            raise _Failed(f"too large: more than {max_bytes} bytes (--max-mb)")
                        if len(head) < len(PDF_MAGIC):
                            head = (head + block)[: len(PDF_MAGIC)]
                        digest.update(block)
                        fh.write(block)
                    if expected is not None and size != expected:
                        raise _Transient(f"truncated: got {size} of {expected} bytes")
                    if not head.startswith(PDF_MAGIC):
                        raise _Failed("not a PDF (does not start with %PDF-)")
                    fh.flush()
                    os.fsync(fh.fileno())
                return tmp, digest.hexdigest()
            except BaseException:
                _unlink_quietly(tmp)
                raise

        return self.request(url, allowed, consume, accept="application/pdf")


# ---------------------------------------------------------------------------
# The fetch
# ---------------------------------------------------------------------------


def allowed_hosts(options: FetchOptions) -> tuple[frozenset[str], frozenset[str]]:
    """(hosts allowed for API calls, hosts allowed for attachments).

    API calls may reach the API root's host (and www.gov.uk); attachments may
    come from GOV.UK's asset hosts, any ``--asset-host`` and the API root's host
    (relative attachment URLs resolve against it).
    """
    parts = urllib.parse.urlsplit(options.api_base)
    api_host = (parts.netloc.rsplit("@", 1)[-1]).lower()
    api = frozenset({api_host, "www.gov.uk"})
    assets = frozenset(
        {normalise_host(h) for h in (*DEFAULT_ASSET_HOSTS, *options.asset_hosts) if h.strip()}
        | {api_host}
    )
    return api, assets


def _offline_message(host: str, detail: str) -> str:
    return (
        f"cannot reach {host}: are you offline? ({detail}); check the connection, "
        f"or point --api-base / {API_BASE_ENV} at a reachable mirror"
    )


def fetch_collection(
    options: FetchOptions, *, sleep: Callable[[float], None] = time.sleep
) -> FetchSummary:
    """Fetch the collection's PDFs into ``options.into`` and update its sources.csv.

    Raises FetchError when the collection itself cannot be read (offline,
    refused API root, bad response); per-file problems are reported in the
    summary instead, so one bad attachment does not stop the rest.
    """
    into = Path(options.into)
    api_allowed, asset_allowed = allowed_hosts(options)
    reason = check_url(options.api_base, api_allowed)
    if reason is not None:
        raise FetchError(f"refused --api-base {options.api_base}: {reason}")
    if options.limit is not None and options.limit < 0:
        raise FetchError("--limit must be 0 or more")
    origin = origin_of(options.api_base)
    collection = normalise_base_path(options.collection)
    client = _Client(options, sleep)

    collection_url = api_url(options.api_base, collection)
    try:
        doc = client.get_json(collection_url, api_allowed)
    except _Unreachable as exc:
        raise FetchError(_offline_message(exc.host, exc.detail)) from None
    except _Failed as exc:
        raise FetchError(f"cannot read collection {collection_url}: {exc}") from None
    if not isinstance(doc, Mapping):
        raise FetchError(f"cannot read collection {collection_url}: not a JSON object")
    documents = collection_documents(doc)
    if not documents:
        logger.warning("collection %s lists no documents", collection)
    if options.limit is not None:
        documents = documents[: options.limit]

    failures: list[Failure] = []
    ignored: list[str] = []
    attachments: list[Attachment] = []
    for base_path, _title in documents:
        url = api_url(options.api_base, base_path)
        try:
            pub = client.get_json(url, api_allowed)
        except (_Failed, _Unreachable) as exc:
            failures.append(Failure(url=url, reason=str(exc)))
            logger.warning("publication %s: %s", base_path, exc)
            continue
        if not isinstance(pub, Mapping):
            failures.append(Failure(url=url, reason="not a JSON object"))
            continue
        pdfs, others = publication_attachments(pub, base_path, origin)
        ignored.extend(others)
        for att in pdfs:
            refusal = check_url(att.url, asset_allowed)
            if refusal is not None:
                failures.append(Failure(url=att.url, reason=f"refused: {refusal}"))
                logger.warning("attachment %s refused: %s", att.url, refusal)
            else:
                attachments.append(att)

    sources_path = into / SOURCES_FILE
    existing, columns = read_sources(sources_path)
    planned = plan_files(attachments, existing)
    present = {p.path for p in planned if is_present(into, p, existing)}

    if options.dry_run:
        return FetchSummary(
            skipped=tuple(p.path for p in planned if p.path in present),
            failed=tuple(failures),
            ignored=tuple(ignored),
            planned=tuple(planned),
            dry_run=True,
            into=str(into),
        )

    into.mkdir(parents=True, exist_ok=True)
    rows = {path: dict(row) for path, row in existing.items()}
    fetched: list[str] = []
    skipped: list[str] = []
    metadata_changed = False
    bar = tqdm(
        planned,
        desc="fetch",
        unit="file",
        file=sys.stderr,
        disable=None if options.progress is None else not options.progress,
    )
    try:
        for item in bar:
            bar.set_postfix_str(item.path[:40], refresh=False)
            if item.path in present:
                row = item.row(rows[item.path]["sha256"].strip().lower())
                if any(rows[item.path].get(k, "") != v for k, v in row.items()):
                    rows = merge_rows(rows, [row])
                    metadata_changed = True
                skipped.append(item.path)
                continue
            try:
                target = _inside(into, item.path)
                tmp, sha = client.download(item.attachment.url, asset_allowed, into)
                try:
                    os.replace(tmp, target)
                except BaseException:
                    _unlink_quietly(tmp)
                    raise
                _fsync_dir(into)
            except (_Failed, _Unreachable) as exc:
                failures.append(Failure(url=item.attachment.url, reason=str(exc), path=item.path))
                logger.warning("%s: %s", item.path, exc)
                continue
            except OSError as exc:
                failures.append(
                    Failure(url=item.attachment.url, reason=f"cannot write: {exc}", path=item.path)
                )
                logger.warning("%s: cannot write: %s", item.path, exc)
                continue
            rows = merge_rows(rows, [item.row(sha)])
            write_sources(sources_path, rows, columns)  # after each file: resumable
            fetched.append(item.path)
            logger.info("fetched %s", item.path)
    finally:
        bar.close()
    if metadata_changed:
        write_sources(sources_path, rows, columns)

    return FetchSummary(
        fetched=tuple(fetched),
        skipped=tuple(skipped),
        failed=tuple(failures),
        ignored=tuple(ignored),
        planned=tuple(planned),
        dry_run=False,
        into=str(into),
    )


def format_summary(summary: FetchSummary) -> str:
    """Human-readable summary, one item per line."""
    lines: list[str] = []
    if summary.dry_run:
        skipped = set(summary.skipped)
        to_fetch = [p for p in summary.planned if p.path not in skipped]
        lines.append(
            f"dry run: would fetch {len(to_fetch)} file(s) into {summary.into}, "
            f"skip {len(summary.skipped)} already present, {len(summary.failed)} refused/failed"
        )
        for p in to_fetch:
            lines.append(f"  fetch  {p.path}  <- {p.attachment.url}")
        for path in summary.skipped:
            lines.append(f"  skip   {path}")
    else:
        lines.append(
            f"fetched {len(summary.fetched)}, skipped {len(summary.skipped)} (already present), "
            f"failed {len(summary.failed)}"
        )
    if summary.ignored:
        lines.append(f"ignored {len(summary.ignored)} non-PDF attachment(s)")
    for failure in summary.failed:
        where = f"{failure.path} " if failure.path else ""
        lines.append(f"  FAILED {where}{failure.url}: {failure.reason}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# CLI glue
# ---------------------------------------------------------------------------


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``qa fetch`` options to ``parser``."""
    parser.add_argument(
        "--collection",
        default=DEFAULT_COLLECTION,
        metavar="PATH",
        help="GOV.UK collection path or www.gov.uk URL (default: the Children's Social "
        "Care Innovation Programme insights and evaluation collection)",
    )
    parser.add_argument(
        "--into",
        type=Path,
        default=DEFAULT_INTO,
        metavar="DIR",
        help="folder for the PDFs and their sources.csv (default: corpus/official)",
    )
    parser.add_argument(
        "--limit", type=_non_negative_int, default=None, metavar="N",
        help="follow at most N publications of the collection",
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="list what would be fetched; write nothing",
    )
    parser.add_argument(
        "--pause", type=_non_negative_float, default=1.0, metavar="SECONDS",
        help="pause between requests, to be polite to GOV.UK (default: 1.0)",
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=30.0, metavar="SECONDS",
        help="network timeout per request (default: 30)",
    )
    parser.add_argument(
        "--max-mb", type=_positive_float, default=100.0, metavar="MB",
        help="size cap per file in MiB; larger files are abandoned and counted as failed "
        "(default: 100)",
    )
    parser.add_argument(
        "--attempts", type=_positive_int, default=4, metavar="N",
        help="attempts per request on HTTP 429/5xx, timeouts and truncated downloads (default: 4)",
    )
    parser.add_argument(
        "--backoff", type=_non_negative_float, default=1.0, metavar="SECONDS",
        help="first retry delay, doubled on each further retry (default: 1.0)",
    )
    parser.add_argument(
        "--api-base", default=None, metavar="URL",
        help=f"Content API root, for mirrors and tests (default: ${API_BASE_ENV} or "
        f"{DEFAULT_API_BASE}); its host is allowed for API calls",
    )
    parser.add_argument(
        "--asset-host", action="append", default=[], metavar="HOST",
        help="also allow attachments from HOST (or HOST:PORT); repeatable. "
        "www.gov.uk and assets.publishing.service.gov.uk are always allowed",
    )


def options_from_args(args: argparse.Namespace) -> FetchOptions:
    """FetchOptions from parsed ``qa fetch`` arguments (the env var fills a missing --api-base)."""
    api_base = args.api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE
    return FetchOptions(
        into=Path(args.into),
        collection=args.collection,
        api_base=api_base,
        asset_hosts=tuple(args.asset_host or ()),
        limit=args.limit,
        dry_run=bool(args.dry_run),
        pause=float(args.pause),
        timeout=float(args.timeout),
        max_bytes=max(1, int(float(args.max_mb) * 1024 * 1024)),
        attempts=int(args.attempts),
        backoff_base=float(args.backoff),
    )


def run(args: argparse.Namespace) -> int:
    """Run ``qa fetch``: fetch, print the summary, return 0 (all ok) or 1 (some failed).

    FetchError propagates: the CLI prints its one-line message and exits 2.
    """
    summary = fetch_collection(options_from_args(args))
    print(format_summary(summary))
    return summary.exit_code
