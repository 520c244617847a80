"""``qa fetch``: download the official reports from GOV.UK into ``corpus/official/`` with a ``sources.csv``.

``catalogue`` plans the files and ``http`` downloads each (loaded only when a fetch runs); ``sources.csv``
is saved after every file, so an interrupted fetch resumes where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import DocumentError, FetchError
from ..sources import fsync_folder, read_sources, remove_parts, sha256_of, write_sources
from .catalogue import Attachment, Skip, api_url, collection_documents, normalise_base_path, plan_files
from .catalogue import publication_attachments

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "/government/collections/childrens-social-care-innovation-programme-insights-and-evaluation"
DEFAULT_API_BASE = "https://www.gov.uk/api/content"
API_BASE_ENV = "QA_GOVUK_API"
ASSET_HOSTS = ("www.gov.uk", "assets.publishing.service.gov.uk")


@dataclass(frozen=True)
class FetchOptions:
    """Everything one fetch needs; the CLI builds it from its arguments."""

    into: Path = Path("corpus") / "official"
    collection: str = DEFAULT_COLLECTION
    api_base: str = DEFAULT_API_BASE
    asset_host: tuple[str, ...] = ()  # more hosts attachments may come from
    limit: int | None = None
    dry_run: bool = False
    pause: float = 1.0
    timeout: float = 30.0  # longest wait for the next bytes
    deadline: float = 600.0  # longest a whole request, download included, may take
    max_mb: float = 100.0  # size cap per file, MiB
    attempts: int = 4
    backoff: float = 1.0


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
    planned: tuple[Attachment, ...] = ()
    notes: tuple[str, ...] = ()
    dry_run: bool = False
    into: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def fetch_collection(options: FetchOptions, *, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> FetchSummary:
    """Fetch the collection's PDFs into ``options.into`` and bring its ``sources.csv`` up to date.

    FetchError when the fetch cannot start (offline, unreadable collection, unusable folder); a file
    that fails is reported in the summary while the rest go on. Tests inject ``sleep`` and ``clock``.
    """
    from .http import Client, Unreachable, check_url

    base = urllib.parse.urlsplit(options.api_base)
    api_allowed = {base.netloc.lower(), "www.gov.uk"}
    hosts = (urllib.parse.urlsplit(h).netloc if "//" in h else h.strip().rstrip("/") for h in options.asset_host)
    asset_allowed = {*ASSET_HOSTS, *(h.lower() for h in hosts if h), base.netloc.lower()}
    if (refusal := check_url(options.api_base, api_allowed)) is not None:
        raise FetchError(f"refused --api-base {options.api_base}: {refusal}; give an https URL of GOV.UK or a mirror")
    url = api_url(options.api_base, normalise_base_path(options.collection))
    with (client := Client(options, sleep, clock)).session:
        try:
            documents = collection_documents(client.get_json(url, api_allowed))
        except Unreachable as exc:
            raise FetchError(f"{exc}; are you offline? Check the connection, or point --api-base / {API_BASE_ENV} "
                             "at a reachable mirror") from None
        except Skip as exc:
            raise FetchError(f"cannot read collection {url}: {exc}; check --collection and --api-base") from None
        summary, attachments = FetchSummary(into=str(options.into)), []
        for base_path in documents[: options.limit]:
            try:
                pdfs, others = publication_attachments(client.get_json(url := api_url(options.api_base, base_path),
                                                                        api_allowed), base_path, f"{base.scheme}://{base.netloc}")
            except Skip as exc:
                summary = replace(summary, failed=(*summary.failed, Failure(url, str(exc))))
                log.warning("publication %s skipped: %s", base_path, exc)
                continue
            refused = [Failure(a.url, f"refused: {why}") for a in pdfs if (why := check_url(a.url, asset_allowed))]
            summary = replace(summary, ignored=(*summary.ignored, *others), failed=(*summary.failed, *refused))
            attachments += [a for a in pdfs if check_url(a.url, asset_allowed) is None]
        return _download(options, client, attachments, summary, asset_allowed)


def _download(options: FetchOptions, client: Any, attachments: list[Attachment], summary: FetchSummary,
              allowed: set[str]) -> FetchSummary:
    """Name the files, then download those missing or changed, saving ``sources.csv`` after each."""
    into, failed, fetched, stale = Path(options.into), list(summary.failed), [], False
    try:
        rows, columns = read_sources(sources := into / "sources.csv")
    except DocumentError as exc:
        raise FetchError(f"{exc}; fix it or move it away, then fetch again") from None
    planned, notes = plan_files(attachments, rows, [p.name for p in into.iterdir()] if into.is_dir() else [])
    present = [a.path for a in planned if sha256_of(into / a.path) == rows.get(a.path, {}).get("sha256", "").strip()]
    summary = replace(summary, planned=tuple(planned), notes=tuple(notes), skipped=tuple(present))
    if options.dry_run:
        return replace(summary, dry_run=True)
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {into}: {exc.strerror or exc}; choose another --into") from None
    from tqdm import tqdm

    try:
        remove_parts(into, ".fetch-", ".sources-")
        for att in tqdm(planned, desc="fetch", unit="file", file=sys.stderr, disable=None):  # a bar on terminals
            if att.path in present:  # refresh its metadata only
                stale |= rows[att.path] != (row := {**rows[att.path], **att.row(rows[att.path]["sha256"].strip())})
                rows[att.path] = row
                continue
            try:
                part, sha = client.download(att.url, allowed, into)
                os.replace(part, into / att.path)
                fsync_folder(into)
            except (Skip, OSError) as exc:
                failed.append(Failure(att.url, str(exc) if isinstance(exc, Skip) else f"cannot write: {exc}", att.path))
                log.warning("%s: %s", att.path, failed[-1].reason)
                continue
            rows[att.path] = {**rows.get(att.path, {}), **att.row(sha)}
            write_sources(sources, rows, columns)
            fetched.append(att.path)
        if stale:
            write_sources(sources, rows, columns)
    except OSError as exc:
        raise FetchError(f"cannot write {sources}: {exc.strerror or exc}; check the folder's permissions") from None
    finally:
        remove_parts(into, ".fetch-", ".sources-")
    return replace(summary, fetched=tuple(fetched), failed=tuple(failed))


def format_summary(summary: FetchSummary) -> str:
    """The summary for a person, one item per line."""
    if summary.dry_run:
        todo = [a for a in summary.planned if a.path not in summary.skipped]
        lines = [f"dry run: would fetch {len(todo)} file(s) into {summary.into}, skip {len(summary.skipped)} "
                 f"already present, {len(summary.failed)} refused/failed"]
        lines += [f"  fetch  {a.path}  <- {a.url}" for a in todo] + [f"  skip   {p}" for p in summary.skipped]
    else:
        lines = [f"fetched {len(summary.fetched)}, skipped {len(summary.skipped)} (already present), "
                 f"failed {len(summary.failed)}"]
    lines += [f"  note: {note}" for note in summary.notes]
    lines += [f"ignored {len(summary.ignored)} non-PDF attachment(s)"] if summary.ignored else []
    return "\n".join(lines + [f"  FAILED {f.path + ' ' if f.path else ''}{f.url}: {f.reason}" for f in summary.failed])


def _number(kind: type, low: float, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` of at least ``low`` (more than it, with ``above``)."""

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
    add, seconds, positive = parser.add_argument, _number(float, 0), _number(float, 0, above=True)
    add("--collection", default=DEFAULT_COLLECTION, metavar="PATH", help="GOV.UK collection path or www.gov.uk URL "
        "(default: the Children's Social Care Innovation Programme insights and evaluation collection)")
    add("--into", type=Path, default=FetchOptions.into, metavar="DIR", help="folder for the PDFs (default: corpus/official)")
    add("--limit", type=_number(int, 0), metavar="N", help="follow at most N publications of the collection")
    add("--dry-run", action="store_true", help="list what would be fetched; write nothing")
    add("--pause", type=seconds, default=1.0, metavar="SECONDS", help="pause between requests (default: 1.0)")
    add("--timeout", type=positive, default=30.0, metavar="SECONDS", help="longest wait for data (default: 30)")
    add("--deadline", type=positive, default=600.0, metavar="SECONDS",
        help="longest a request may take in all, download included (default: 600)")
    add("--max-mb", type=positive, default=100.0, metavar="MB", help="size cap per file in MiB (default: 100)")
    add("--attempts", type=_number(int, 1), default=4, metavar="N",
        help="attempts per request on HTTP 429/5xx, timeouts and broken-off downloads (default: 4)")
    add("--backoff", type=seconds, default=1.0, metavar="SECONDS",
        help="first retry delay, doubled on each further retry (default: 1.0)")
    add("--api-base", metavar="URL", help=f"Content API root, for mirrors (default: ${API_BASE_ENV} or {DEFAULT_API_BASE})")
    add("--asset-host", action="append", default=[], metavar="HOST", help="also allow attachments from HOST "
        "(or HOST:PORT); repeatable. www.gov.uk and assets.publishing.service.gov.uk are always allowed")


def options_from_args(args: argparse.Namespace) -> FetchOptions:
    """FetchOptions from parsed ``qa fetch`` arguments (the environment fills a missing --api-base)."""
    given = {f.name: getattr(args, f.name) for f in fields(FetchOptions) if getattr(args, f.name, None) is not None}
    return FetchOptions(**{**given, "asset_host": tuple(args.asset_host),
                           "api_base": args.api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE})


def run(args: argparse.Namespace) -> int:
    """``qa fetch``: print the summary; 0 if all went well, 1 if a file failed (FetchError: the CLI exits 2).
    SIGTERM exits through the same clean-up as an error, so no part file is left behind."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum)) if main else None
    try:
        summary = fetch_collection(options_from_args(args))
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    print(format_summary(summary))
    return summary.exit_code
