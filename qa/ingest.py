"""Turn a corpus folder into an index: discover, parse, chunk, embed, store.

One ingest is ``plan`` (which documents to keep, parse or drop, decided from
the manifest alone) -> ``_parse_and_embed`` -> ``_write``. Parsing runs in
worker processes while the main process embeds, so reading PDFs hides behind
the model; each worker reads one file at a time under a time limit and a
memory cap, and dies with the ingest. Ingest is incremental: a document whose
bytes and catalogue entry are unchanged keeps its chunks and vectors; only new
or changed files are embedded; deleted files disappear. Bad files are skipped
with a reason and never stop the run.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from .abstain import recorded_thresholds
from .chunking import ChunkSettings, chunk_document, embedding_text, token_counter
from .clean import clean_document, title_heading
from .embed import Embedder
from .errors import DocumentError, IndexMismatchError
from .readers import DEFAULT_MAX_CHARS, DEFAULT_MAX_PAGES, SUPPORTED_SUFFIXES, read_document
from .records import DocMeta, Document, IngestReport, Page, ParsedDocument, Skipped
from .sources import meta_from_row, read_sources
from .store import FORMAT_VERSION, GenerationWriter, IndexStore, Manifest, current_generation, mismatch, prune, write_lock
from .structure import embedding_text as unit_embedding_text
from .structure import page_units, quotable

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnContext

log = logging.getLogger(__name__)

SOURCES_CSV = "sources.csv"
DEFAULT_PARSE_TIMEOUT = 300.0
DEFAULT_WORKER_MEMORY_MB = 4096
DEFAULT_MAX_FILE_MB = 1024
# Chunks indexed per document at most. The longest evaluation report measured (244 pages) makes
# 928 and a 500-page report about 2,000-4,000; the cap stops a hostile file (10 MB of one word
# makes ~67,000) before it costs half an hour of embedding, and being a count, not a time, it
# ends the same way on a busy machine as on an idle one. Chunking stops at the cap too: that
# file reaches it in about 70 s on two cores shared four times over, well inside the parse limit.
DEFAULT_MAX_CHUNKS = 10_000


@dataclass(frozen=True)
class IngestSettings:
    """Knobs of one ingest run; only ``chunking`` is recorded in the index."""

    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    max_pages: int = DEFAULT_MAX_PAGES
    max_chars: int = DEFAULT_MAX_CHARS
    workers: int | None = None  # parsing processes; None: one per core, at most 4; 0: in-process (no time limit)
    parse_timeout: float = DEFAULT_PARSE_TIMEOUT  # seconds one file may take to read, clean and chunk
    worker_memory_mb: int = DEFAULT_WORKER_MEMORY_MB  # address space of one parsing process; 0: no cap
    max_file_mb: int = DEFAULT_MAX_FILE_MB  # larger files are skipped unread
    max_chunks: int = DEFAULT_MAX_CHUNKS  # chunks indexed per document; the rest of a longer one is left out and named
    batch_size: int = 4  # texts per encoder batch: the fastest measured on two cores (docs/benchmarks.md)
    follow_symlinks: bool = False
    progress: bool = False
    static_dir: Path | None = None  # the app's served copies: those of documents dropped or replaced here are deleted


@dataclass(frozen=True)
class DocKey:
    """What decides whether a stored document is still current.

    Its bytes (``content``, sha256) and its catalogue entry (``meta``, a short
    hash, "-" without one); ``limits`` are the (pages, characters, chunks)
    limits its text was cut short by, so it is read again in full once they
    are raised. Stored in the manifest as ``content:meta`` or
    ``content:meta|limits:P:C:K`` (``P:C`` in indexes from before the chunk cap).
    """

    content: str
    meta: str
    limits: tuple[int, ...] | None = None

    def __str__(self) -> str:
        base = f"{self.content}:{self.meta}"
        return base if self.limits is None else f"{base}|limits:{':'.join(map(str, self.limits))}"

    @classmethod
    def parse(cls, text: str) -> DocKey | None:
        """The key a manifest stored, or None for one this version did not write."""
        match = re.fullmatch(r"([0-9a-f]{64}):([0-9a-f]{16}|-)(?:\|limits:(\d+:\d+(?::\d+)?))?", text)
        if not match:
            return None
        limits = tuple(int(n) for n in match.group(3).split(":")) if match.group(3) else None
        return cls(match.group(1), match.group(2), limits)

    def still_current(self, now: DocKey, limits: tuple[int, ...]) -> bool:
        """Whether a document stored under this key can be kept for a file whose key is ``now``."""
        return (self.content, self.meta) == (now.content, now.meta) and self.limits in (None, limits)


@dataclass(frozen=True)
class SourceFile:
    """A file found in the corpus folder with the key that says whether it changed."""

    path: Path
    rel_path: str
    key: DocKey
    meta: DocMeta | None


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _valid_name(name: str) -> bool:
    """False for names the file system gave as undecodable bytes (Python keeps them as surrogates).

    Such a name cannot be stored in the index or shown to the user.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_DEPTH = 100  # folders below the corpus folder that are searched; deeper ones are named and left out


def _walk(corpus_dir: Path, follow_symlinks: bool, skipped: list[Skipped]) -> Iterator[tuple[Path, list[str]]]:
    """Each folder searched under ``corpus_dir``, top-down in name order, with the sorted names of its other entries.

    An explicit stack, not recursion (``os.walk`` and ``Path.rglob`` recurse
    once per level and raise ``RecursionError`` about 1,000 folders down).
    Folders left out are added to ``skipped`` with the reason: hidden ones
    silently, and those that cannot be listed, have undecodable names, are
    links not to be followed, close a link loop or lie more than
    ``MAX_DEPTH`` folders down, by name.
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack = [corpus_dir]
    while stack:
        here = stack.pop()
        rel_here = here.relative_to(corpus_dir)
        try:
            st = here.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop when following links
            skipped.append(Skipped(rel_here.as_posix(), "symbolic link loop; not followed"))
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(here) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(rel_here.as_posix() or ".",
                                   f"folder cannot be listed ({exc.strerror or exc}); check its permissions"))
            continue
        folders: list[Path] = []
        others: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()  # follows a link, as os.walk does
            except OSError:
                is_dir = False
            if not is_dir:
                others.append(entry.name)
                continue
            name = entry.name
            rel = (rel_here / name).as_posix()
            if _is_hidden(name):
                continue
            if not _valid_name(name):
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                skipped.append(Skipped(shown, "its folder name is not valid UTF-8; rename the folder"))
            elif entry.is_symlink() and not follow_symlinks:
                skipped.append(Skipped(rel, "a symbolic link to a folder; not followed (use --follow-symlinks)"))
            elif len(rel_here.parts) + 1 > MAX_DEPTH:
                skipped.append(Skipped(rel, f"is nested more than {MAX_DEPTH} folders deep; not searched (move its "
                                            "documents nearer the corpus folder)"))
            else:
                folders.append(here / name)
        yield here, others
        stack.extend(reversed(folders))


def discover(corpus_dir: Path, follow_symlinks: bool = False,
             max_bytes: int = DEFAULT_MAX_FILE_MB * 2**20) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """Supported files under ``corpus_dir`` (recursively, sorted), and the ones refused.

    Hidden files and folders are ignored. Symbolic links are not followed unless
    asked; a link loop or a link out of the corpus is named in the skip list, and
    so is a folder more than ``MAX_DEPTH`` levels down.
    Only regular files of at most ``max_bytes`` are documents: a FIFO or device
    named ``x.pdf`` would block the reader, a huge file would exhaust memory.
    """
    root = corpus_dir.resolve()
    found: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    for here, filenames in _walk(corpus_dir, follow_symlinks, skipped):
        for name in filenames:
            path = here / name
            rel = path.relative_to(corpus_dir).as_posix()
            if _is_hidden(name) or name == SOURCES_CSV or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if not _valid_name(rel):
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                skipped.append(Skipped(shown, "its file name is not valid UTF-8; rename the file"))
                continue
            if _CONTROL_CHARS.search(rel):
                skipped.append(Skipped(_CONTROL_CHARS.sub("?", rel), "its name holds control characters; rename the file"))
                continue
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(Skipped(rel, "broken symbolic link or link loop; fix or remove it"))
                    continue
                if not follow_symlinks and not target.is_relative_to(root):
                    skipped.append(Skipped(rel, "symbolic link pointing outside the corpus; not followed (use "
                                                "--follow-symlinks)"))
                    continue
            try:
                st = path.stat()
            except OSError as exc:
                skipped.append(Skipped(rel, f"cannot be read ({exc.strerror or exc}); check the file", passing=True))
                continue
            if not stat.S_ISREG(st.st_mode):
                if not stat.S_ISDIR(st.st_mode):
                    skipped.append(Skipped(rel, "is not a regular file (a pipe, socket or device); replace it with the document "
                                                "itself"))
                continue
            if st.st_size > max_bytes:
                skipped.append(Skipped(rel, f"is larger than {max_bytes / 2**20:g} MB; split it or raise --max-file-mb"))
                continue
            found.append((path, rel))
    return found, skipped


def read_catalogue(corpus_dir: Path, follow_symlinks: bool = False) -> dict[str, DocMeta]:
    """Metadata rows from every ``sources.csv`` in the folders ``discover`` searches; paths are relative to each csv."""
    catalogue: dict[str, DocMeta] = {}
    for here, filenames in _walk(corpus_dir, follow_symlinks, []):
        if SOURCES_CSV not in filenames:
            continue
        csv_path = here / SOURCES_CSV
        base = here.relative_to(corpus_dir)
        try:
            rows, _ = read_sources(csv_path)
        except DocumentError as exc:
            log.warning("%s; its files keep metadata from the files themselves", exc)
            continue
        for path, row in rows.items():
            catalogue[(base / path).as_posix()] = meta_from_row(row)
    return catalogue


def _hash_source(path: Path) -> str:
    """sha256 of a source file; opened without blocking and refused unless it is a regular file.

    A file swapped for a FIFO after it was listed would otherwise block here forever.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_key(path: Path, meta: DocMeta | None) -> DocKey:
    """Content sha256 plus the catalogue entry: either changing means re-embedding."""
    meta_part = hashlib.sha256(json.dumps(asdict(meta), sort_keys=True).encode()).hexdigest()[:16] if meta else "-"
    return DocKey(_hash_source(path), meta_part)


def _sources(files: list[tuple[Path, str]], catalogue: dict[str, DocMeta]) -> tuple[list[SourceFile], list[Skipped]]:
    """Each listed file with its key; a file that cannot be hashed now (gone, unreadable) is a passing skip."""
    sources: list[SourceFile] = []
    skipped: list[Skipped] = []
    for path, rel in files:
        meta = catalogue.get(rel)
        try:
            sources.append(SourceFile(path, rel, _file_key(path, meta), meta))
        except OSError as exc:
            skipped.append(Skipped(rel, f"cannot be read ({exc.strerror or exc}); check the file and its "
                                        "permissions", passing=True))
    return sources, skipped


def _title_from_name(rel_path: str) -> str:
    stem = Path(rel_path).stem
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else rel_path


@dataclass(frozen=True)
class ParseJob:
    """One file to read, clean and chunk, with everything a worker process needs for it."""

    path: str
    rel_path: str
    meta: DocMeta | None
    chunking: ChunkSettings
    tokenizer_file: str | None
    max_pages: int
    max_chars: int
    max_chunks: int = DEFAULT_MAX_CHUNKS


def parse_file(path: str, rel_path: str, meta: DocMeta | None, chunking: ChunkSettings,
               tokenizer_file: str | None, max_pages: int, max_chars: int,
               max_chunks: int = DEFAULT_MAX_CHUNKS) -> ParsedDocument:
    """Read, clean and chunk one file (``parse`` with positional arguments, for callers outside ingest)."""
    return parse(ParseJob(path, rel_path, meta, chunking, tokenizer_file, max_pages, max_chars, max_chunks))


def parse(job: ParseJob) -> ParsedDocument:
    """Read, clean and chunk one file; the pure part of ingest, run in a worker process.

    Metadata: the catalogue entry's fields first, then the PDF's own, then the
    first heading naming the document, then the file name. Raises
    ``DocumentError`` for a file that cannot be indexed.
    """
    path, rel_path, meta = job.path, job.rel_path, job.meta
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise DocumentError(rel_path, f"cannot be read ({exc.strerror or exc}); check the file") from exc
    if not stat.S_ISREG(mode):  # replaced by a pipe or device since it was listed
        raise DocumentError(rel_path, "is not a regular file (a pipe, socket or device); replace it with the document itself")
    raw = read_document(Path(path), rel_path, max_pages=job.max_pages, max_chars=job.max_chars)
    pages, headings = clean_document(raw)
    if not any(p.text.strip() for p in pages):
        raise DocumentError(rel_path, "has no text left after cleaning; nothing to index")
    # One chunk past the cap says whether the cap cut anything; chunking stops there either way.
    chunks = chunk_document(pages, headings, job.chunking, token_counter(job.tokenizer_file), job.max_chunks + 1)
    if not chunks:
        raise DocumentError(rel_path, "produced no text chunks; nothing to index")
    truncated = raw.truncated
    if len(chunks) > job.max_chunks:
        chunks = chunks[: job.max_chunks]
        last_page = chunks[-1].page if chunks else 0
        cut = (f"only the first {job.max_chunks:,} chunks were indexed, up to page {last_page:,} of {len(pages):,} "
               "(raise --max-chunks to index all)")
        pages = [p for p in pages if p.page <= last_page]
        truncated = f"{truncated}; {cut}" if truncated else cut
    pages = [replace(p, units=page_units(p.text)) for p in pages]  # structure read once, here
    meta = meta or DocMeta(title="")
    title = meta.title or raw.title or title_heading(headings) or _title_from_name(rel_path)
    full_meta = replace(meta, title=title, authors=meta.authors or raw.author, year=meta.year or raw.year)
    document = Document(doc_id=rel_path, meta=full_meta, content_hash=raw.content_hash, kind=raw.kind, n_pages=len(pages))
    return ParsedDocument(document=document, pages=tuple(pages), chunks=tuple(chunks),
                          truncated=truncated, notes=tuple(raw.notes))


def parse_or_skip(job: ParseJob) -> ParsedDocument | Skipped:
    """``parse``, with every failure turned into a ``Skipped`` naming the file and the fix."""
    try:
        return parse(job)
    except DocumentError as exc:
        cause = exc.__cause__
        return Skipped(exc.path, exc.reason, passing=isinstance(cause, OSError))
    except OSError as exc:  # gone, unreadable or failing between listing and reading
        return Skipped(job.rel_path, f"cannot be read ({exc.strerror or exc}); check the file and its permissions", passing=True)
    except MemoryError:
        return Skipped(job.rel_path, "too large to read in memory; lower --max-pages/--max-chars, raise --worker-memory-mb "
                       "or split the file", passing=True)
    except RecursionError:
        return Skipped(job.rel_path, "is nested too deeply to read (a damaged or hostile file); download it again")
    except Exception as exc:  # one unexpected failure must not stop the ingest
        log.info("unexpected failure reading %s", job.rel_path, exc_info=True)  # the traceback only with -v
        return Skipped(job.rel_path, f"could not be read ({type(exc).__name__}: {exc}); check the file or report it")


ParseFunction = Callable[[ParseJob], "ParsedDocument | Skipped"]
_DIED = "crashed its reader process twice (out of memory, or a fault in the PDF library); split or re-save the file"
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent dies (even by SIGKILL).

    Without it a worker outlives a killed ingest, holding the caller's stdout
    open, so ``qa ingest | tee`` never ends. Elsewhere this is a no-op.
    """
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _limit_memory(limit_bytes: int) -> None:
    """Cap this process's address space, so a hostile file raises MemoryError instead of swapping."""
    if limit_bytes <= 0:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit_bytes = min(limit_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    except (ImportError, ValueError, OSError) as exc:
        log.info("cannot cap a reader process's memory: %s", exc)


_READY = "ready"


_READERS_IMPORTS = ("pypdf", "bs4", "pysbd", "langchain_text_splitters")  # imported lazily by the parse


def _worker_main(conn: Connection, parse: ParseFunction, parent_pid: int, memory_bytes: int) -> None:
    """A reader process: say it is ready, then parse each job it is sent and send the result back; ``None`` ends it."""
    _die_with_parent(parent_pid)
    _limit_memory(memory_bytes)
    for name in _READERS_IMPORTS:  # a worker's first file is not charged a second of imports
        importlib.import_module(name)
    try:
        conn.send(_READY)  # imports are done: from here a file's time limit is the file's own
        while True:
            job = conn.recv()
            if job is None:
                return
            conn.send(parse(job))
    except (EOFError, OSError):  # the ingest is gone or stopped this worker
        return


class _Worker:
    """One reader process working on at most one file, so a hang or crash is that file's."""

    def __init__(self, context: SpawnContext, parse: ParseFunction, memory_bytes: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, parse, os.getpid(), memory_bytes), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.job: ParseJob | None = None
        self.started = 0.0

    def give(self, job: ParseJob) -> None:
        self.job = job
        self.started = time.monotonic()
        self.conn.send(job)

    def stop(self, kill: bool = False) -> None:
        if not kill and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                kill = True
            else:
                self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()
        self.process.close()


def _timed_out(job: ParseJob, seconds: float) -> Skipped:
    return Skipped(job.rel_path, f"took longer than {seconds:g} s to read; split the file or raise --parse-timeout", passing=True)


_START_FAILURES = 3  # reader processes that die before taking any file; then files are parsed here


def _parse_all(jobs: list[ParseJob], workers: int, parse: ParseFunction = parse_or_skip, *,
               timeout: float | None = None, memory_bytes: int = 0) -> Iterator[ParsedDocument | Skipped]:
    """Parse files, in worker processes when ``workers`` > 0; yields each result as it finishes.

    Each worker reads one file at a time. A file still being read after
    ``timeout`` seconds (counted from when its worker took it, not from the
    worker's start-up) has its worker killed and is skipped ("took longer
    than"); the others go on in a fresh worker. A worker that dies (killed by
    the OS for memory, a crash in a parser) gets its file read once more in a
    fresh process, in case the fault was passing; a second death skips the
    file. Workers cap their memory at ``memory_bytes`` and die with this
    process, so a killed ingest leaves no reader behind. With ``workers`` <= 0
    files are parsed here, without a time limit.
    """
    queue = deque(jobs)
    if workers <= 0:
        for queued in queue:
            yield parse(queued)
        return
    from multiprocessing.connection import wait as wait_any

    context = multiprocessing.get_context("spawn")  # torch's threads make fork unsafe
    crashed: set[str] = set()
    start_failures = 0
    pool: list[_Worker] = []
    try:
        while queue or any(w.job is not None for w in pool):
            if start_failures >= _START_FAILURES:
                log.warning("reader processes keep dying on start; reading the remaining files in this process")
                for w in [w for w in pool if w.job is None]:
                    pool.remove(w)
                    w.stop(kill=True)
                while queue:
                    yield parse(queue.popleft())
                if not pool:
                    break
            for w in pool:
                if w.ready and w.job is None and queue:
                    w.give(queue.popleft())
            while len(pool) < workers and len(queue) > sum(1 for w in pool if w.job is None):
                pool.append(_Worker(context, parse, memory_bytes))
            busy = [w for w in pool if w.job is not None]
            wait_for: float | None = None
            if timeout is not None and busy:
                wait_for = max(0.0, min(w.started + timeout for w in busy) - time.monotonic())
            ready = set(wait_any([w.conn for w in pool] + [w.process.sentinel for w in pool], wait_for))
            for w in list(pool):
                job = w.job
                message: object = None
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        message = None
                if message == _READY:
                    w.ready = True
                    continue
                if message is not None and job is not None:
                    w.job = None
                    # A worker sends only _READY (handled above) or parse()'s result.
                    yield cast("ParsedDocument | Skipped", message)
                    continue
                if w.conn in ready or w.process.sentinel in ready:  # the process died
                    pool.remove(w)
                    w.stop(kill=True)
                    if job is None:
                        start_failures += 1
                    elif job.rel_path in crashed:
                        yield Skipped(job.rel_path, _DIED, passing=True)
                    else:
                        log.warning("the reader process for %s died; reading it again in a fresh one", job.rel_path)
                        crashed.add(job.rel_path)
                        queue.appendleft(job)
                elif job is not None and timeout is not None and time.monotonic() - w.started >= timeout:
                    pool.remove(w)
                    w.stop(kill=True)
                    log.warning("%s took longer than %g s to read; its reader was stopped", job.rel_path, timeout)
                    yield _timed_out(job, timeout)
    finally:
        busy_left = any(w.job is not None for w in pool)
        for w in pool:
            w.stop(kill=busy_left or not w.ready)


def _size(path: Path) -> int:
    """A file's size, 0 when it cannot be read (its parse then says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


PASSING = "passing"  # third item of a manifest skip entry: try the file again next time


def _is_passing(entry: list[str]) -> bool:
    return len(entry) > 2 and entry[2] == PASSING


def _limits(settings: IngestSettings) -> tuple[int, int, int]:
    return (settings.max_pages, settings.max_chars, settings.max_chunks)


def _default_workers(n_jobs: int) -> int:
    """At least one worker process whenever there is a file to read: only a worker can be stopped
    when a file takes too long, so even one file is not parsed in the main process."""
    if n_jobs <= 0:
        return 0
    return max(1, min(4, n_jobs, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class Plan:
    """What one ingest does, decided before any file is read.

    ``keep`` documents are carried over from the old index, ``parse`` files are
    new or changed, ``drop`` documents are gone from the corpus; ``skipped``
    are refusals known already (discovery, unreadable now, or a lasting reason
    remembered for unchanged bytes).
    """

    keep: tuple[str, ...]
    parse: tuple[SourceFile, ...]
    drop: tuple[str, ...]
    keys: dict[str, DocKey]  # rel_path -> key of every source file listed now
    remembered: dict[str, list[str]]  # lasting skips carried over, as stored in the manifest
    skipped: tuple[Skipped, ...]

    @property
    def nothing_to_do(self) -> bool:
        return not self.parse and not self.drop


def plan(corpus_dir: Path, settings: IngestSettings, old: Manifest | None) -> Plan:
    """Compare the corpus with the old index's manifest: the pure decision part of ingest."""
    files, skipped = discover(corpus_dir, settings.follow_symlinks, max(0, settings.max_file_mb) * 2**20)
    sources, unhashed = _sources(files, read_catalogue(corpus_dir, settings.follow_symlinks))
    skipped.extend(unhashed)
    old_keys = dict(old.documents) if old else {}
    # A skip for a passing reason (vanished, crashed, too slow) is tried again;
    # only a lasting one (damaged, encrypted, empty) waits for the bytes to change.
    old_skips = {rel: entry for rel, entry in old.skipped.items() if not _is_passing(entry)} if old else {}
    keys = {s.rel_path: s.key for s in sources}
    limits = _limits(settings)
    stored = {rel: DocKey.parse(text) for rel, text in old_keys.items()}
    keep = sorted(rel for rel, key in keys.items() if (was := stored.get(rel)) is not None and was.still_current(key, limits))
    remembered = {rel: old_skips[rel] for rel, key in keys.items() if rel in old_skips and old_skips[rel][0] == str(key)}
    skipped.extend(Skipped(rel, entry[1]) for rel, entry in sorted(remembered.items()))
    return Plan(
        keep=tuple(keep),
        parse=tuple(s for s in sources if s.rel_path not in keep and s.rel_path not in remembered),
        drop=tuple(sorted(set(old_keys) - set(keys))),
        keys=keys,
        remembered=remembered,
        skipped=tuple(skipped),
    )


@dataclass
class _Embedded:
    """What parsing and embedding produced (built up as results arrive, so not frozen)."""

    # doc_id -> (parsed document with its units' vector rows set, chunk vectors, unit vectors)
    documents: dict[str, tuple[ParsedDocument, np.ndarray, np.ndarray]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    truncated: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    chunks: int = 0


def _parse_and_embed(todo: Plan, embedder: Embedder, settings: IngestSettings,
                     on_progress: Callable[[int, int], None] | None) -> _Embedded:
    """Parse the planned files in worker processes and embed each document as it arrives."""
    out = _Embedded()
    # Smallest files first: the encoder gets its first document sooner while the
    # large ones parse beside it (on the shared corpus 1.5 s instead of 4-5 s).
    jobs = [ParseJob(str(s.path), s.rel_path, s.meta, settings.chunking, embedder.tokenizer_file,
                     settings.max_pages, settings.max_chars, settings.max_chunks)
            for s in sorted(todo.parse, key=lambda s: _size(s.path))]
    workers = _default_workers(len(jobs)) if settings.workers is None else settings.workers
    timeout = settings.parse_timeout if settings.parse_timeout > 0 else None
    bar = _progress_bar(settings.progress)
    total = embedded = 0  # texts to embed and embedded: chunks, then each document's quotable units
    for outcome in _parse_all(jobs, workers, timeout=timeout, memory_bytes=max(0, settings.worker_memory_mb) * 2**20):
        if isinstance(outcome, Skipped):
            out.skipped.append(outcome)
            log.warning("skipped %s: %s", outcome.path, outcome.reason)
            continue
        result = outcome
        doc = result.document
        if outcome.truncated:
            out.truncated[doc.doc_id] = outcome.truncated
        for note in (outcome.truncated, *outcome.notes):
            if note:
                log.warning("%s: %s", doc.doc_id, note)
                out.notes.append(f"{doc.doc_id}: {note}")
        result, unit_texts = with_vector_rows(result)
        texts = [embedding_text(c, doc.title, settings.chunking) for c in result.chunks]
        chunk_count = len(texts)
        texts += unit_texts  # the quotable units, embedded now so that no question has to
        total += len(texts)
        if bar is not None:
            bar.total = total
            bar.refresh()
        parts = []
        for i in range(0, len(texts), 256):
            part = embedder.embed(texts[i : i + 256], batch_size=settings.batch_size)
            parts.append(part)
            embedded += len(part)
            if bar is not None:
                bar.update(len(part))
            if on_progress:
                on_progress(embedded, total)
        vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)
        out.chunks += chunk_count
        out.documents[doc.doc_id] = (result, vectors[:chunk_count], vectors[chunk_count:])
    if bar is not None:
        bar.close()
    return out


def with_vector_rows(result: ParsedDocument) -> tuple[ParsedDocument, list[str]]:
    """The document with each quotable unit numbered for a vector (from 0), and the texts to embed, in that order."""
    texts: list[str] = []
    pages = []
    for page in result.pages:
        found = []
        for unit in page.units:
            if quotable(unit):
                found.append(replace(unit, vector=len(texts)))
                texts.append(unit_embedding_text(unit))
            else:
                found.append(replace(unit, vector=None))
        pages.append(replace(page, units=tuple(found)))
    return replace(result, pages=tuple(pages)), texts


def renumbered(pages: list[Page]) -> tuple[list[Page], list[int]]:
    """Pages carried into a new generation, their units' vector rows numbered from 0; the old rows, in that order."""
    rows: list[int] = []
    out = []
    for page in pages:
        found = []
        for unit in page.units:
            if unit.vector is None:
                found.append(unit)
            else:
                found.append(replace(unit, vector=len(rows)))
                rows.append(unit.vector)
        out.append(replace(page, units=tuple(found)))
    return out, rows


def _write(writer: GenerationWriter, todo: Plan, done: _Embedded, old: IndexStore | None) -> dict[str, str]:
    """Add kept and new documents to the new generation, in path order; their manifest keys."""
    old_vectors = old.all_vectors() if old is not None and todo.keep else None
    keys: dict[str, str] = {}
    for rel in sorted(set(todo.keep) | set(done.documents)):
        if rel in done.documents:
            result, vectors, unit_vectors = done.documents[rel]
            writer.add(result.document, result.pages, result.chunks, vectors, unit_vectors)
            keys[rel] = str(todo.keys[rel])
        else:
            assert old is not None and old_vectors is not None
            pairs = old.doc_chunks(rel)
            ids = np.array([i for i, _ in pairs], dtype=np.int64)
            pages, rows = renumbered(old.pages(rel))
            writer.add(old.documents[rel], pages, [c for _, c in pairs], old_vectors[ids],
                       old.all_unit_vectors()[np.array(rows, dtype=np.int64)])
            keys[rel] = old.manifest.documents[rel]
    return keys


def _replaced(old: IndexStore, todo: Plan, done: _Embedded) -> list[Document]:
    """Versions in the old index that the new one does not hold: dropped, changed, or now unreadable."""
    now = {rel: result.document.content_hash for rel, (result, _, _) in done.documents.items()}
    return [d for rel, d in old.documents.items() if rel not in todo.keep and now.get(rel) != d.content_hash]


def _unpublish(static_dir: Path, documents: list[Document]) -> None:
    """Stop serving copies of these versions from the app's static folder; a failure is logged, the index is written."""
    from .ui import unpublish

    try:
        removed = unpublish(static_dir, documents)
    except OSError as exc:
        log.warning("could not delete the served copies of removed documents in %s (%s); the app deletes them when it "
                    "next loads the index", static_dir, exc.strerror or exc)
        return
    if removed:
        log.info("deleted %d served copies of removed or changed documents from %s", len(removed), static_dir)


def ingest(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    settings: IngestSettings | None = None,
    rebuild: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Bring the index at ``index_dir`` in step with ``corpus_dir``: plan, parse and embed, write.

    Raises ``IndexMismatchError`` when the existing index was built with another
    model or chunking and ``rebuild`` is False, ``IndexLockedError`` when another
    ingest is writing, ``IndexWriteError`` when the index folder cannot be
    written. Never leaves the index half-written.
    """
    settings = settings or IngestSettings()
    started = time.perf_counter()
    corpus_dir = Path(corpus_dir)
    index_dir = Path(index_dir)
    if not corpus_dir.is_dir():
        raise DocumentError(str(corpus_dir), "is not a folder; give the folder that holds your documents")
    chunking: dict[str, object] = dict(settings.chunking.as_dict())  # the manifest's field type
    with write_lock(index_dir):
        prune(index_dir)
        old: IndexStore | None = None
        if not rebuild and current_generation(index_dir):
            old = IndexStore(index_dir)
            why = mismatch(old.manifest, model=embedder.name, model_hash=embedder.fingerprint,
                           dimension=embedder.dimension, chunking=chunking)
            if why:
                old.close()
                raise IndexMismatchError(f"the index in {index_dir} was {why}; rebuild with `qa ingest --rebuild`")

        todo = plan(corpus_dir, settings, old.manifest if old else None)
        if old is not None and todo.nothing_to_do:
            report = IngestReport(
                documents=len(old.documents), pages=old.count("pages"), chunks=old.count("chunks"),
                embedded_chunks=0, new_or_changed=(), removed=(), skipped=todo.skipped,
                seconds=time.perf_counter() - started, index_dir=str(index_dir),
            )
            old.close()
            log.info("index is up to date")
            return report

        writer = GenerationWriter(index_dir, embedder.dimension)
        try:
            done = _parse_and_embed(todo, embedder, settings, on_progress)
            documents = _write(writer, todo, done, old)
            # A document cut short by a limit is stored with the limits in its key.
            documents |= {rel: str(replace(todo.keys[rel], limits=_limits(settings))) for rel in done.truncated}
            failed = {s.path: [str(todo.keys[s.path]), s.reason] + ([PASSING] if s.passing else [])
                      for s in done.skipped if s.path in todo.keys}
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                model=embedder.name,
                model_hash=embedder.fingerprint,
                dimension=embedder.dimension,
                chunking=chunking,
                built_at=datetime.now(UTC).isoformat(timespec="seconds"),
                corpus_dir=str(corpus_dir.resolve()),
                documents=documents,
                counts=writer.counts,
                skipped=failed | todo.remembered,
                abstain=recorded_thresholds(embedder.name),  # the thresholds travel with their model
            )
            replaced = _replaced(old, todo, done) if old is not None else []
            if old is not None:
                old.close()
            writer.commit(manifest)
        except BaseException:
            writer.abandon()
            raise
        prune(index_dir)
    if settings.static_dir is not None and replaced:
        _unpublish(settings.static_dir, replaced)
    return IngestReport(
        documents=len(documents), pages=writer.pages, chunks=writer.next_id, embedded_chunks=done.chunks,
        new_or_changed=tuple(sorted(done.documents)), removed=todo.drop, skipped=(*todo.skipped, *done.skipped),
        seconds=time.perf_counter() - started, index_dir=str(index_dir), notes=tuple(done.notes),
    )


class _ProgressBar(Protocol):
    """The part of a tqdm bar that the ingest uses."""

    total: int

    def refresh(self) -> None: ...

    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


def _progress_bar(enabled: bool) -> _ProgressBar | None:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=0, unit="chunk", desc="embedding", dynamic_ncols=True)
