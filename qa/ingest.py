"""Turn a corpus folder into an index: discover, parse, chunk, embed, store.

Parsing runs in worker processes while the main process embeds, so reading
PDFs hides behind the model. Ingest is incremental: a document whose bytes and
catalogue entry are unchanged keeps its chunks and vectors; only new or changed
files are embedded; deleted files disappear. Bad files are skipped with a
reason and never stop the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .chunking import ChunkSettings, chunk_document, embedding_text, token_counter
from .clean import clean_document
from .embed import Embedder
from .errors import DocumentError, IndexMismatchError
from .readers import DEFAULT_MAX_CHARS, DEFAULT_MAX_PAGES, SUPPORTED_SUFFIXES, read_document
from .records import DocMeta, Document, IngestReport, ParsedDocument, Skipped
from .store import FORMAT_VERSION, GenerationWriter, IndexStore, Manifest, current_generation, mismatch, prune, write_lock

log = logging.getLogger(__name__)

SOURCES_CSV = "sources.csv"
SOURCES_COLUMNS = ("path", "title", "authors", "year", "publisher", "url", "licence")


@dataclass(frozen=True)
class IngestSettings:
    """Knobs of one ingest run; only ``chunking`` is recorded in the index."""

    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    max_pages: int = DEFAULT_MAX_PAGES
    max_chars: int = DEFAULT_MAX_CHARS
    workers: int | None = None  # parsing processes; None: one per core, at most 4; 0: in-process
    batch_size: int = 32
    follow_symlinks: bool = False
    progress: bool = False


@dataclass(frozen=True)
class SourceFile:
    """A file found in the corpus folder with the key that says whether it changed."""

    path: Path
    rel_path: str
    key: str
    meta: DocMeta | None


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def discover(corpus_dir: Path, follow_symlinks: bool = False) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """Supported files under ``corpus_dir`` (recursively, sorted), and the ones refused.

    Hidden files and folders are ignored. Symbolic links are not followed unless
    asked; a link loop or a link out of the corpus is named in the skip list.
    """
    root = corpus_dir.resolve()
    found: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(corpus_dir, followlinks=follow_symlinks):
        here = Path(dirpath)
        try:
            st = here.stat()
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop when following links
            skipped.append(Skipped(here.relative_to(corpus_dir).as_posix(), "symbolic link loop; not followed"))
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        for name in list(dirnames):
            if _is_hidden(name):
                dirnames.remove(name)
            elif (here / name).is_symlink() and not follow_symlinks:
                skipped.append(Skipped((here / name).relative_to(corpus_dir).as_posix(), "a symbolic link to a folder; not followed (use --follow-symlinks)"))
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(corpus_dir).as_posix()
            if _is_hidden(name) or name == SOURCES_CSV or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(Skipped(rel, "broken symbolic link or link loop; fix or remove it"))
                    continue
                if not follow_symlinks and not target.is_relative_to(root):
                    skipped.append(Skipped(rel, "symbolic link pointing outside the corpus; not followed (use --follow-symlinks)"))
                    continue
            if not path.is_file():
                continue
            found.append((path, rel))
    return found, skipped


def read_catalogue(corpus_dir: Path) -> dict[str, DocMeta]:
    """Metadata rows from every ``sources.csv`` under the corpus; paths are relative to each csv."""
    catalogue: dict[str, DocMeta] = {}
    for csv_path in sorted(corpus_dir.rglob(SOURCES_CSV)):
        if any(_is_hidden(part) for part in csv_path.relative_to(corpus_dir).parts):
            continue
        base = csv_path.parent.relative_to(corpus_dir)
        try:
            with csv_path.open(newline="", encoding="utf-8-sig") as handle:
                for row in csv.DictReader(handle):
                    path = (row.get("path") or "").strip()
                    if not path:
                        continue
                    rel = (base / path).as_posix()
                    year_text = (row.get("year") or "").strip()
                    year = int(year_text) if re.fullmatch(r"\d{4}", year_text) else None
                    catalogue[rel] = DocMeta(
                        title=(row.get("title") or "").strip(),
                        authors=(row.get("authors") or "").strip(),
                        year=year,
                        publisher=(row.get("publisher") or "").strip(),
                        url=(row.get("url") or "").strip(),
                        licence=(row.get("licence") or "").strip(),
                    )
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            log.warning("%s cannot be read (%s); its files keep metadata from the files themselves", csv_path, exc)
    return catalogue


def _file_key(path: Path, meta: DocMeta | None) -> str:
    """Content sha256 plus the catalogue entry: either changing means re-embedding."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    meta_part = hashlib.sha256(json.dumps(asdict(meta), sort_keys=True).encode()).hexdigest()[:16] if meta else "-"
    return f"{digest.hexdigest()}:{meta_part}"


def _title_from_name(rel_path: str) -> str:
    stem = Path(rel_path).stem
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else rel_path


def parse_file(path: str, rel_path: str, meta: DocMeta | None, chunking: ChunkSettings,
               tokenizer_file: str | None, max_pages: int, max_chars: int) -> ParsedDocument:
    """Read, clean and chunk one file; the pure part of ingest, run in a worker process.

    Metadata: the catalogue entry's fields first, then the PDF's own, then the
    first heading, then the file name.
    """
    raw = read_document(Path(path), rel_path, max_pages=max_pages, max_chars=max_chars)
    pages, headings = clean_document(raw)
    if not any(p.text.strip() for p in pages):
        raise DocumentError(rel_path, "has no text left after cleaning; nothing to index")
    chunks = chunk_document(pages, headings, chunking, token_counter(tokenizer_file))
    if not chunks:
        raise DocumentError(rel_path, "produced no text chunks; nothing to index")
    meta = meta or DocMeta(title="")
    first_heading = headings[0].text if headings else ""
    title = meta.title or raw.title or first_heading or _title_from_name(rel_path)
    full_meta = replace(meta, title=title, authors=meta.authors or raw.author, year=meta.year or raw.year)
    document = Document(doc_id=rel_path, meta=full_meta, content_hash=raw.content_hash, kind=raw.kind, n_pages=len(pages))
    if raw.truncated:
        log.warning("%s: %s", rel_path, raw.truncated)
    return ParsedDocument(document=document, pages=tuple(pages), chunks=tuple(chunks))


def _parse_or_skip(args: tuple) -> ParsedDocument | Skipped:
    try:
        return parse_file(*args)
    except DocumentError as exc:
        return Skipped(exc.path, exc.reason)
    except MemoryError:
        return Skipped(args[1], "too large to read in memory; lower --max-pages/--max-chars or split the file")
    except Exception as exc:  # noqa: BLE001 - one unexpected failure must not stop the ingest
        log.exception("unexpected failure reading %s", args[1])
        return Skipped(args[1], f"could not be read ({type(exc).__name__}: {exc})")


def _parse_all(jobs: list[tuple], workers: int) -> Iterator[ParsedDocument | Skipped]:
    """Parse files, in worker processes when asked; yields each result as it finishes.

    If the worker pool breaks (a worker killed by the OS, say), the file it held
    is skipped with that reason and the rest are parsed in this process.
    """
    queue = list(jobs)
    if workers > 0 and len(queue) > 1:
        context = multiprocessing.get_context("spawn")  # torch's threads make fork unsafe
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                pending: dict[Future, tuple] = {}
                while queue or pending:
                    while queue and len(pending) < workers * 2:
                        job = queue.pop(0)
                        pending[pool.submit(_parse_or_skip, job)] = job
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = pending.pop(future)
                        try:
                            yield future.result()
                        except BrokenProcessPool:
                            yield Skipped(job[1], "its reader process died (out of memory?); lower --max-pages or split the file")
                            queue.extend(pending.values())
                            pending.clear()
                            raise
        except BrokenProcessPool:
            log.warning("the parsing processes stopped; reading the remaining files in this process")
    for job in queue:
        yield _parse_or_skip(job)


def _default_workers(n_jobs: int) -> int:
    if n_jobs < 4:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def ingest(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    settings: IngestSettings | None = None,
    rebuild: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Bring the index at ``index_dir`` in step with ``corpus_dir``.

    Raises ``IndexMismatchError`` when the existing index was built with another
    model or chunking and ``rebuild`` is False, ``IndexLockedError`` when another
    ingest is writing. Never leaves the index half-written.
    """
    settings = settings or IngestSettings()
    started = time.perf_counter()
    corpus_dir = Path(corpus_dir)
    index_dir = Path(index_dir)
    if not corpus_dir.is_dir():
        raise DocumentError(str(corpus_dir), "is not a folder; give the folder that holds your documents")
    chunking = settings.chunking.as_dict()
    with write_lock(index_dir):
        prune(index_dir)
        old: IndexStore | None = None
        if current_generation(index_dir) and not rebuild:
            old = IndexStore(index_dir)
            why = mismatch(old.manifest, model=embedder.name, model_hash=embedder.fingerprint,
                           dimension=embedder.dimension, chunking=chunking)
            if why:
                raise IndexMismatchError(f"the index in {index_dir} was {why}; rebuild with `qa ingest --rebuild`")

        files, skipped = discover(corpus_dir, settings.follow_symlinks)
        catalogue = read_catalogue(corpus_dir)
        sources = [SourceFile(p, rel, _file_key(p, catalogue.get(rel)), catalogue.get(rel)) for p, rel in files]
        old_keys = dict(old.manifest.documents) if old else {}
        old_skips = dict(old.manifest.skipped) if old else {}
        keys = {s.rel_path: s.key for s in sources}
        reuse = sorted(rel for rel, key in keys.items() if old_keys.get(rel) == key)
        known_bad = {rel: old_skips[rel][1] for rel, key in keys.items() if rel in old_skips and old_skips[rel][0] == key}
        to_parse = [s for s in sources if s.rel_path not in reuse and s.rel_path not in known_bad]
        removed = sorted(set(old_keys) - set(keys))
        skipped.extend(Skipped(rel, reason) for rel, reason in sorted(known_bad.items()))

        if old is not None and not to_parse and not removed:
            report = IngestReport(
                documents=len(old.documents), pages=old.count("pages"), chunks=old.count("chunks"),
                embedded_chunks=0, new_or_changed=(), removed=(), skipped=tuple(skipped),
                seconds=time.perf_counter() - started, index_dir=str(index_dir),
            )
            old.close()
            log.info("index is up to date")
            return report

        writer = GenerationWriter(index_dir, embedder.dimension)
        try:
            parsed: dict[str, tuple[ParsedDocument, np.ndarray]] = {}
            bad: dict[str, list[str]] = {}
            jobs = [
                (str(s.path), s.rel_path, s.meta, settings.chunking, embedder.tokenizer_file, settings.max_pages, settings.max_chars)
                for s in to_parse
            ]
            workers = _default_workers(len(jobs)) if settings.workers is None else settings.workers
            bar = _progress_bar(settings.progress)
            total = embedded = 0
            for result in _parse_all(jobs, workers):
                if isinstance(result, Skipped):
                    skipped.append(result)
                    if result.path in keys:
                        bad[result.path] = [keys[result.path], result.reason]
                    log.warning("skipped %s: %s", result.path, result.reason)
                    continue
                doc = result.document
                texts = [embedding_text(c, doc.title, settings.chunking) for c in result.chunks]
                total += len(texts)
                if bar is not None:
                    bar.total = total
                    bar.refresh()
                vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
                parts = []
                for i in range(0, len(texts), 256):
                    part = embedder.embed(texts[i : i + 256], batch_size=settings.batch_size)
                    parts.append(part)
                    embedded += len(part)
                    if bar is not None:
                        bar.update(len(part))
                    if on_progress:
                        on_progress(embedded, total)
                if parts:
                    vectors = np.concatenate(parts)
                parsed[doc.doc_id] = (result, vectors)
            if bar is not None:
                bar.close()

            old_vectors = old.all_vectors() if old is not None and reuse else None
            for rel in sorted(set(reuse) | set(parsed)):
                if rel in parsed:
                    result, vectors = parsed[rel]
                    writer.add(result.document, result.pages, result.chunks, vectors)
                else:
                    assert old is not None and old_vectors is not None
                    pairs = old.doc_chunks(rel)
                    ids = np.array([i for i, _ in pairs], dtype=np.int64)
                    writer.add(old.documents[rel], old.pages(rel), [c for _, c in pairs], old_vectors[ids])
            documents = {rel: keys[rel] for rel in sorted(set(reuse) | set(parsed))}
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                model=embedder.name,
                model_hash=embedder.fingerprint,
                dimension=embedder.dimension,
                chunking=chunking,
                built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                corpus_dir=str(corpus_dir.resolve()),
                documents=documents,
                counts={"documents": len(documents), "pages": writer.pages, "chunks": writer.next_id},
                skipped=bad | {r: old_skips[r] for r in known_bad},
            )
            if old is not None:
                old.close()
            writer.commit(manifest)
        except BaseException:
            writer.abandon()
            raise
        prune(index_dir)
    return IngestReport(
        documents=len(documents), pages=writer.pages, chunks=writer.next_id, embedded_chunks=embedded,
        new_or_changed=tuple(sorted(parsed)), removed=tuple(removed), skipped=tuple(skipped),
        seconds=time.perf_counter() - started, index_dir=str(index_dir),
    )


def _progress_bar(enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=0, unit="chunk", desc="embedding", dynamic_ncols=True)
