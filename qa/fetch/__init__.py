"""``qa fetch``: download the official reports from GOV.UK into ``corpus/official/``.

Follows the collection's publications to their PDF attachments (``catalogue``),
downloads each through a host-locked, polite client (``http``) into a part file
that is renamed into place only when complete, and records each file's
metadata and sha256 in the folder's ``sources.csv`` after every file, so an
interrupted fetch resumes where it stopped. The network modules load only
when a fetch runs, so ``qa --help`` stays quick.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..errors import DocumentError, FetchError
from ..sources import TEMP_SUFFIX, fsync_folder, read_sources, write_sources
from .catalogue import PlannedFile, Skip, api_url, collection_documents, normalise_base_path, plan_files, \
    publication_attachments

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "/government/collections/childrens-social-care-innovation-programme-insights-and-evaluation"
DEFAULT_API_BASE = "https://www.gov.uk/api/content"
API_BASE_ENV = "QA_GOVUK_API"
DEFAULT_INTO = Path("corpus") / "official"
ASSET_HOSTS = ("www.gov.uk", "assets.publishing.service.gov.uk")
PART_PREFIXES = (".fetch-", ".sources-")


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
    timeout: float = 30.0  # longest silence while waiting for bytes
    deadline: float = 600.0  # longest a whole request may take
    max_bytes: int = 100 * 1024 * 1024
    attempts: int = 4
    backoff_base: float = 1.0
    max_retry_after: float = 60.0
    progress: bool | None = None  # None: only when stderr is a terminal


@dataclass(frozen=True)
class Failure:
    """Something that could not be fetched, and why."""

    url: str
    reason: str
    path: str = ""


@dataclass(frozen=True)
class FetchSummary:
    """The outcome of one fetch; ``fetched`` and ``skipped`` hold file names."""

    fetched: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[Failure, ...] = ()
    ignored: tuple[str, ...] = ()  # non-PDF attachment URLs
    planned: tuple[PlannedFile, ...] = ()
    notes: tuple[str, ...] = ()
    dry_run: bool = False
    into: str = ""

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0


def _host(entry: str) -> str:
    entry = entry.strip().lower()
    return (urllib.parse.urlsplit(entry).netloc if "//" in entry else entry).rstrip("/")


def allowed_hosts(options: FetchOptions) -> tuple[frozenset[str], frozenset[str]]:
    """Hosts allowed for API calls (the API's and www.gov.uk), and for attachments (also the asset hosts)."""
    api_host = urllib.parse.urlsplit(options.api_base).netloc.rsplit("@", 1)[-1].lower()
    assets = {_host(h) for h in (*ASSET_HOSTS, *options.asset_hosts) if h.strip()}
    return frozenset({api_host, "www.gov.uk"}), frozenset(assets | {api_host})


def _clean_parts(folder: Path) -> None:
    """Remove part files a killed or failed fetch left behind."""
    for path in folder.glob(f".*{TEMP_SUFFIX}"):
        if path.name.startswith(PART_PREFIXES) and not path.is_dir():
            path.unlink(missing_ok=True)
            log.info("removed the leftover %s", path)


def _is_present(folder: Path, item: PlannedFile, rows: dict[str, dict[str, str]]) -> bool:
    """True when the file is there with the sha256 its row records."""
    recorded = rows.get(item.path, {}).get("sha256", "").strip().lower()
    try:
        with (folder / item.path).open("rb") as handle:
            return bool(recorded) and hashlib.file_digest(handle, "sha256").hexdigest() == recorded
    except OSError:
        return False


def _save(path: Path, rows: dict[str, dict[str, str]], columns: list[str]) -> None:
    try:
        write_sources(path, rows, columns)
    except OSError as exc:
        raise FetchError(f"cannot write {path}: {exc.strerror or exc}; check the folder's permissions and free space") from None


def fetch_collection(options: FetchOptions, *, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> FetchSummary:
    """Fetch the collection's PDFs into ``options.into`` and bring its ``sources.csv`` up to date.

    Raises FetchError when the fetch cannot start (offline, refused or unreadable
    collection, unusable folder); a file that fails is reported in the summary
    and the rest go on. ``sleep`` and ``clock`` are injectable for tests.
    """
    from .http import Client, Unreachable, check_url, is_loopback

    into = Path(options.into)
    api_allowed, asset_allowed = allowed_hosts(options)
    refusal = check_url(options.api_base, api_allowed)
    if refusal is not None:
        raise FetchError(f"refused --api-base {options.api_base}: {refusal}; give an https URL on www.gov.uk or a mirror")
    if options.limit is not None and options.limit < 0:
        raise FetchError("--limit must be 0 or more")
    collection = normalise_base_path(options.collection)
    parts = urllib.parse.urlsplit(options.api_base)
    client = Client(timeout=options.timeout, deadline=options.deadline, attempts=options.attempts,
                    backoff=options.backoff_base, max_retry_after=options.max_retry_after, pause=options.pause,
                    sleep=sleep, clock=clock, use_proxies=not is_loopback(parts.hostname or ""))
    try:
        url = api_url(options.api_base, collection)
        try:
            documents = collection_documents(client.get_json(url, api_allowed))
        except Unreachable as exc:
            raise FetchError(f"cannot reach {exc.host}: are you offline? ({exc.detail}); check the connection, "
                             f"or point --api-base / {API_BASE_ENV} at a reachable mirror") from None
        except Skip as exc:
            raise FetchError(f"cannot read collection {url}: {exc}; check --collection and --api-base") from None
        failed: list[Failure] = []
        ignored: list[str] = []
        attachments = []
        for base_path in documents[: options.limit]:
            url = api_url(options.api_base, base_path)
            try:
                pdfs, others = publication_attachments(client.get_json(url, api_allowed), base_path,
                                                       f"{parts.scheme}://{parts.netloc}")
            except (Skip, TypeError, ValueError, AttributeError) as exc:
                failed.append(Failure(url, str(exc) if isinstance(exc, Skip) else f"malformed Content API reply: {exc}"))
                log.warning("publication %s skipped: %s", base_path, failed[-1].reason)
                continue
            ignored.extend(others)
            for att in pdfs:
                refusal = check_url(att.url, asset_allowed)
                if refusal is None:
                    attachments.append(att)
                else:
                    failed.append(Failure(att.url, f"refused: {refusal}"))
        return _download_all(options, client, attachments, failed, ignored, asset_allowed)
    finally:
        client.session.close()


def _download_all(options: FetchOptions, client: Any, attachments: list, failed: list[Failure], ignored: list[str],
                  allowed: frozenset[str]) -> FetchSummary:
    into = Path(options.into)
    sources = into / "sources.csv"
    try:
        rows, columns = read_sources(sources)
    except DocumentError as exc:
        raise FetchError(f"{exc}; fix it or move it away, then fetch again") from None
    on_disk = [p.name for p in into.iterdir() if p.name != sources.name] if into.is_dir() else []
    planned, notes = plan_files(attachments, rows, on_disk)
    for note in notes:
        log.warning("%s", note)
    present = {p.path for p in planned if _is_present(into, p, rows)}
    summary = FetchSummary(failed=tuple(failed), ignored=tuple(ignored), planned=tuple(planned), notes=tuple(notes),
                           into=str(into), skipped=tuple(p.path for p in planned if p.path in present))
    if options.dry_run:
        return FetchSummary(**{**summary.__dict__, "dry_run": True})
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {into}: {exc.strerror or exc}; choose another --into") from None
    from tqdm import tqdm

    fetched: list[str] = []
    stale = False
    bar = tqdm(planned, desc="fetch", unit="file", file=sys.stderr,
               disable=None if options.progress is None else not options.progress)
    try:
        _clean_parts(into)
        for item in bar:
            if item.path in present:
                row = item.row(rows[item.path].get("sha256", "").strip().lower())
                stale |= any(rows[item.path].get(k, "") != v for k, v in row.items())
                rows[item.path].update(row)
                continue
            try:
                temp, sha = client.download(item.attachment.url, allowed, into, options.max_bytes)
                os.replace(temp, into / item.path)
                fsync_folder(into)
            except (Skip, OSError) as exc:
                reason = str(exc) if isinstance(exc, Skip) else f"cannot write: {exc}"
                failed.append(Failure(item.attachment.url, reason, item.path))
                log.warning("%s: %s", item.path, reason)
                continue
            rows[item.path] = {**rows.get(item.path, {}), **item.row(sha)}
            _save(sources, rows, columns)  # after each file, so a rerun resumes
            fetched.append(item.path)
        if stale:
            _save(sources, rows, columns)
    finally:
        bar.close()
        _clean_parts(into)
    return FetchSummary(**{**summary.__dict__, "fetched": tuple(fetched), "failed": tuple(failed)})


def format_summary(summary: FetchSummary) -> str:
    """The summary for a person, one item per line."""
    if summary.dry_run:
        todo = [p for p in summary.planned if p.path not in summary.skipped]
        lines = [f"dry run: would fetch {len(todo)} file(s) into {summary.into}, skip {len(summary.skipped)} "
                 f"already present, {len(summary.failed)} refused/failed"]
        lines += [f"  fetch  {p.path}  <- {p.attachment.url}" for p in todo]
        lines += [f"  skip   {path}" for path in summary.skipped]
    else:
        lines = [f"fetched {len(summary.fetched)}, skipped {len(summary.skipped)} (already present), "
                 f"failed {len(summary.failed)}"]
    lines += [f"  note: {note}" for note in summary.notes]
    lines += [f"ignored {len(summary.ignored)} non-PDF attachment(s)"] if summary.ignored else []
    lines += [f"  FAILED {f.path + ' ' if f.path else ''}{f.url}: {f.reason}" for f in summary.failed]
    return "\n".join(lines)


def _number(kind: type, low: float, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` of at least (or, with ``above``, more than) ``low``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if not math.isfinite(value) or value < low or (above and value == low):
            raise argparse.ArgumentTypeError(f"must be {'more than' if above else 'at least'} {low}: {text!r}")
        return value

    return parse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``qa fetch`` options to ``parser``."""
    add = parser.add_argument
    add("--collection", default=DEFAULT_COLLECTION, metavar="PATH", help="GOV.UK collection path or www.gov.uk URL "
        "(default: the Children's Social Care Innovation Programme insights and evaluation collection)")
    add("--into", type=Path, default=DEFAULT_INTO, metavar="DIR",
        help="folder for the PDFs and their sources.csv (default: corpus/official)")
    add("--limit", type=_number(int, 0), metavar="N", help="follow at most N publications of the collection")
    add("--dry-run", action="store_true", help="list what would be fetched; write nothing")
    add("--pause", type=_number(float, 0), default=1.0, metavar="SECONDS",
        help="pause between requests, to be polite to GOV.UK (default: 1.0)")
    add("--timeout", type=_number(float, 0, above=True), default=30.0, metavar="SECONDS",
        help="give up on a request after this long without data (default: 30)")
    add("--deadline", type=_number(float, 0, above=True), default=600.0, metavar="SECONDS",
        help="give up on a request, a download included, after this long in all (default: 600)")
    add("--max-mb", type=_number(float, 0, above=True), default=100.0, metavar="MB",
        help="size cap per file in MiB; larger files are abandoned and counted as failed (default: 100)")
    add("--attempts", type=_number(int, 1), default=4, metavar="N",
        help="attempts per request on HTTP 429/5xx, timeouts and broken-off downloads (default: 4)")
    add("--backoff", type=_number(float, 0), default=1.0, metavar="SECONDS",
        help="first retry delay, doubled on each further retry (default: 1.0)")
    add("--api-base", metavar="URL", help=f"Content API root, for mirrors and tests (default: ${API_BASE_ENV} or "
        f"{DEFAULT_API_BASE}); its host is allowed for API calls")
    add("--asset-host", action="append", default=[], metavar="HOST", help="also allow attachments from HOST "
        "(or HOST:PORT); repeatable. www.gov.uk and assets.publishing.service.gov.uk are always allowed")


def options_from_args(args: argparse.Namespace) -> FetchOptions:
    """FetchOptions from parsed ``qa fetch`` arguments (the environment fills a missing --api-base)."""
    return FetchOptions(
        into=Path(args.into), collection=args.collection,
        api_base=args.api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE,
        asset_hosts=tuple(args.asset_host), limit=args.limit, dry_run=args.dry_run, pause=args.pause,
        timeout=args.timeout, deadline=args.deadline, max_bytes=max(1, int(args.max_mb * 1024 * 1024)),
        attempts=args.attempts, backoff_base=args.backoff)


def _terminate(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the clean-up of part files


def run(args: argparse.Namespace) -> int:
    """Run ``qa fetch``: print the summary; 0 when all went well, 1 when a file failed.

    FetchError propagates: the CLI prints its one line and exits 2. SIGTERM
    exits through the same clean-up as an error, so no part file is left.
    """
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        summary = fetch_collection(options_from_args(args))
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    print(format_summary(summary))
    return summary.exit_code
