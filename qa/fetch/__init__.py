"""``qa fetch``: download the official reports from GOV.UK into ``corpus/official/`` with a ``sources.csv``.

``catalogue`` plans the files and ``http`` (loaded only when a fetch runs) downloads them; ``sources.csv``
is saved after every file, so an interrupted fetch resumes where it stopped."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import DocumentError, FetchError
from ..files import remove_parts, sha256_or_none
from ..settings import DEFAULT_GOVUK_API, Settings
from ..sources import read_sources, write_sources
from .catalogue import Attachment, Skip, collection_documents, normalise_base_path, plan_files, publication_attachments

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "/government/collections/childrens-social-care-innovation-programme-insights-and-evaluation"
ASSET_HOSTS = ("www.gov.uk", "assets.publishing.service.gov.uk")


@dataclass(frozen=True)
class FetchOptions:
    """Everything one fetch needs, named as the ``qa fetch`` flags; out-of-range values raise FetchError."""

    into: Path = Path("corpus") / "official"
    collection: str = DEFAULT_COLLECTION
    api_base: str = DEFAULT_GOVUK_API
    asset_host: tuple[str, ...] = ()  # more hosts attachments may come from
    limit: int | None = None
    dry_run: bool = False
    pause: float = 1.0
    timeout: float = 30.0  # longest wait for the next bytes
    deadline: float = 600.0  # longest a whole request, download included, may take
    max_mb: float = 100.0  # size cap per file, MiB
    attempts: int = 4
    backoff: float = 1.0

    def __post_init__(self) -> None:
        ok = {"--limit": (self.limit or 0) >= 0, "--attempts": self.attempts >= 1, "--pause": 0 <= self.pause < math.inf,
              "--backoff": 0 <= self.backoff < math.inf, "--timeout": 0 < self.timeout < math.inf,
              "--deadline": 0 < self.deadline < math.inf, "--max-mb": 0 < self.max_mb < math.inf}
        if bad := [flag for flag, good in ok.items() if not good]:
            raise FetchError(f"{', '.join(bad)} out of range: --attempts takes 1 or more; --timeout, --deadline and "
                             "--max-mb more than 0; --limit, --pause and --backoff 0 or more")


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
    planned: tuple[Attachment, ...] = ()
    notes: tuple[str, ...] = ()
    dry_run: bool = False


def fetch_collection(options: FetchOptions, *, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> FetchSummary:
    """Fetch the collection's PDFs into ``options.into`` and bring its ``sources.csv`` up to date; FetchError
    when it cannot start (offline, unreadable collection, unusable folder), while a file that fails is reported
    in the summary and the rest go on. Tests inject ``sleep`` and ``clock``."""
    from .http import Client, check_url

    base = urllib.parse.urlsplit(options.api_base)
    api_allowed = {base.netloc.lower(), "www.gov.uk"}
    asset_allowed = {*ASSET_HOSTS, *(h.strip().lower() for h in options.asset_host), base.netloc.lower()}
    if (refusal := check_url(options.api_base, api_allowed)) is not None:
        raise FetchError(f"refused --api-base {options.api_base}: {refusal}; give an https URL of GOV.UK or a mirror")
    url = options.api_base.rstrip("/") + urllib.parse.quote(normalise_base_path(options.collection), safe="/-._~%")
    failed: list[Failure] = []
    attachments: list[Attachment] = []
    with (client := Client(options, sleep, clock)).session:
        try:
            documents = collection_documents(client.get_json(url, api_allowed))
        except Skip as exc:
            raise FetchError(f"cannot read collection {url}: {exc}; check --collection and --api-base") from None
        for base_path in documents[: options.limit]:
            try:
                url = options.api_base.rstrip("/") + urllib.parse.quote(base_path, safe="/-._~%")
                pdfs = publication_attachments(client.get_json(url, api_allowed), base_path, f"{base.scheme}://{base.netloc}")
            except Skip as exc:
                failed.append(Failure(url, str(exc)))
                continue
            refused = [Failure(a.url, f"refused: {why}") for a in pdfs if (why := check_url(a.url, asset_allowed))]
            attachments += [a for a in pdfs if a.url not in {f.url for f in refused}]
            failed += refused
        return _download(options, client, attachments, failed, asset_allowed)


def _download(options: FetchOptions, client: Any, attachments: list[Attachment], failed: list[Failure],
              allowed: set[str]) -> FetchSummary:
    """Name the files, then download those missing or changed, saving ``sources.csv`` after each."""
    into, fetched = Path(options.into), []
    try:
        rows, columns = read_sources(sources := into / "sources.csv")
    except DocumentError as exc:
        raise FetchError(f"{exc}; fix it or move it away, then fetch again") from None
    planned, notes = plan_files(attachments, rows, [p.name for p in into.iterdir()] if into.is_dir() else [])
    present = [a.path for a in planned if sha256_or_none(into / a.path) == rows.get(a.path, {}).get("sha256", "").strip()]
    summary = FetchSummary(skipped=tuple(present), planned=tuple(planned), notes=tuple(notes), failed=tuple(failed))
    if options.dry_run:
        return replace(summary, dry_run=True)
    from tqdm import tqdm

    try:
        into.mkdir(parents=True, exist_ok=True)
        remove_parts(into, ".fetch-", ".sources-")
        for att in tqdm(planned, desc="fetch", unit="file", file=sys.stderr, disable=None):  # a bar on terminals
            if att.path in present:  # keep the file, refresh its metadata
                rows[att.path] = {**rows[att.path], **att.row(rows[att.path]["sha256"].strip())}
                continue
            try:
                part, sha = client.download(att.url, allowed, into)
                os.replace(part, into / att.path)  # made durable by the sources.csv write below
            except (Skip, OSError) as exc:
                failed.append(Failure(att.url, str(exc) if isinstance(exc, Skip) else f"cannot write: {exc}", att.path))
                log.warning("%s: %s", att.path, failed[-1].reason)
                continue
            rows[att.path] = {**rows.get(att.path, {}), **att.row(sha)}
            write_sources(sources, rows, columns)
            fetched.append(att.path)
        if present:
            write_sources(sources, rows, columns)
    except OSError as exc:
        raise FetchError(f"cannot write in {into}: {exc.strerror or exc}; check its permissions or use --into") from None
    finally:
        remove_parts(into, ".fetch-", ".sources-")
    return replace(summary, fetched=tuple(fetched), failed=tuple(failed))


def format_summary(summary: FetchSummary) -> str:
    """The summary for a person, one item per line."""
    todo = [a for a in summary.planned if a.path not in summary.skipped]
    lines = [f"dry run: would fetch {len(todo)} file(s), skip {len(summary.skipped)} already present, "
             f"{len(summary.failed)} refused/failed"] if summary.dry_run else [
        f"fetched {len(summary.fetched)}, skipped {len(summary.skipped)} (already present), failed {len(summary.failed)}"]
    lines += [f"  fetch  {a.path}  <- {a.url}" for a in todo if summary.dry_run]
    lines += [f"  note: {note}" for note in summary.notes]
    return "\n".join(lines + [f"  FAILED {f.path + ' ' if f.path else ''}{f.url}: {f.reason}" for f in summary.failed])


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``qa fetch`` options to ``parser`` (FetchOptions checks their ranges)."""
    add = parser.add_argument
    add("--collection", default=DEFAULT_COLLECTION, metavar="PATH", help="collection path or URL (default: the programme's)")
    add("--into", type=Path, default=FetchOptions.into, metavar="DIR", help="folder for the PDFs (default: corpus/official)")
    add("--limit", type=int, metavar="N", help="follow at most N publications of the collection")
    add("--dry-run", action="store_true", help="list what would be fetched; write nothing")
    add("--pause", type=float, default=1.0, metavar="SECONDS", help="pause between requests (default: 1.0)")
    add("--timeout", type=float, default=30.0, metavar="SECONDS", help="longest wait for data (default: 30)")
    add("--deadline", type=float, default=600.0, metavar="SECONDS", help="longest a download may take (default: 600)")
    add("--max-mb", type=float, default=100.0, metavar="MB", help="size cap per file in MiB (default: 100)")
    add("--attempts", type=int, default=4, metavar="N", help="tries per request on 429/5xx (default: 4)")
    add("--backoff", type=float, default=1.0, metavar="SECONDS", help="first retry delay, then doubled (default: 1.0)")
    add("--api-base", metavar="URL", help=f"Content API root, for mirrors (default: $QA_GOVUK_API or {DEFAULT_GOVUK_API})")
    add("--asset-host", action="append", default=[], metavar="HOST", help="also allow attachments from HOST "
        "(or HOST:PORT); repeatable. www.gov.uk and assets.publishing.service.gov.uk are always allowed")


def options_from_args(args: argparse.Namespace, settings: Settings) -> FetchOptions:
    """FetchOptions from parsed ``qa fetch`` arguments; the API base is the settings' (``--api-base`` or QA_GOVUK_API)."""
    given = {f.name: getattr(args, f.name) for f in fields(FetchOptions) if getattr(args, f.name, None) is not None}
    return FetchOptions(**{**given, "asset_host": tuple(args.asset_host), "api_base": settings.govuk_api})


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``qa fetch``: print the summary, return 0 or (a file failed) 1; SIGTERM unwinds through the clean-up."""
    previous = signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    try:
        summary = fetch_collection(options_from_args(args, settings))
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_summary(summary))
    return 1 if summary.failed else 0
