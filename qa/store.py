"""The index folder: a FAISS index of vectors, SQLite for chunks and pages, a manifest.

Layout::

    index/
      CURRENT             name of the generation in use (replaced atomically)
      gen-<n>-<time>-<id>/  manifest.json, chunks.sqlite, vectors.faiss, lexical.npz (n counts up)
      .lock               held by the one ingest allowed to write

Every ingest writes a complete new generation in a temporary folder, syncs
it, renames it into place and only then points CURRENT at it. A crash at any
moment leaves the previous generation current and intact. Generations are
never modified after that, so readers open them read-only and immutable.
No pickle: JSON, SQLite, FAISS's own format and plain NumPy arrays only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import faiss
import numpy as np

from . import lexical
from .chunking import file_words
from .errors import IndexLockedError, IndexMismatchError, IndexMissingError, IndexWriteError
from .features import scorer_sha256
from .files import fsync_path, sha256_file
from .profiles import profile_sha256
from .records import Chunk, DocMeta, Document, Page
from .structure import units_from_json, units_to_json

log = logging.getLogger(__name__)

# 2: BM25 impacts stored in lexical.npz; 3: sha256 of every file in the manifest;
# 4: each page's units, and the vectors of its quotable units in units.npy
FORMAT_VERSION = 4
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
DB = "chunks.sqlite"
VECTORS = "vectors.faiss"
LEXICAL = lexical.FILE
UNIT_VECTORS = "units.npy"  # float16 vectors of the quotable units, row = Unit.vector
LOCK = ".lock"
KEEP_GENERATIONS = 2
PAGE_CACHE = 512  # pages kept parsed per loaded generation
CHUNK_CACHE = 8192  # chunks kept, likewise (a search reads about a hundred)

_TOKENIZE = "porter unicode61 remove_diacritics 2"  # the FTS5 tokenizer; query words are stemmed with it too
_SCHEMA = f"""
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, authors TEXT NOT NULL, year INTEGER,
    publisher TEXT NOT NULL, url TEXT NOT NULL, licence TEXT NOT NULL,
    content_hash TEXT NOT NULL, kind TEXT NOT NULL, n_pages INTEGER NOT NULL
);
CREATE TABLE pages (
    doc_id TEXT NOT NULL, page INTEGER NOT NULL, label TEXT NOT NULL, text TEXT NOT NULL,
    units TEXT NOT NULL,
    PRIMARY KEY (doc_id, page)
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, page INTEGER NOT NULL, page_label TEXT NOT NULL,
    section TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks (doc_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, section, title, tokenize = '{_TOKENIZE}'
);
"""


@dataclass(frozen=True)
class Manifest:
    """What an index was built with; compared on load so vectors are never mixed."""

    format_version: int
    model: str
    model_hash: str
    dimension: int
    chunking: dict[str, object]
    built_at: str
    corpus_dir: str
    documents: dict[str, str] = field(default_factory=dict)  # doc_id -> content sha256
    counts: dict[str, int] = field(default_factory=dict)
    # path -> [key, reason(, "passing")]; lasting ones are not retried while the file is unchanged
    skipped: dict[str, list[str]] = field(default_factory=dict)
    generation: str = ""
    # Integrity: sha256 of each file of the generation, checked before any of them is loaded.
    files: dict[str, str] = field(default_factory=dict)
    # Abstention thresholds calibrated for this model (see qa.abstain), recorded by ingest.
    abstain: dict[str, float] = field(default_factory=dict)
    # sha256 of the answer scorer (qa/data/scorer.json) and of the word profile (qa.profiles) it was built
    # with; "" in an index built before they were recorded (taken as they are). A change asks for a
    # rebuild, as a chunking change does.
    scorer: str = ""
    profile: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        """Parse and type-check a manifest; anything unexpected is ``IndexMismatchError``.

        A damaged or foreign manifest must stop with a clear message before any
        of its values reach the store, never crash half-way through an ingest.
        """

        def refuse(why: str) -> IndexMismatchError:
            return IndexMismatchError(f"{where} is not a manifest this version can read ({why}); rebuild with `qa ingest "
                                      "--rebuild`")

        try:
            data = json.loads(text)
        except ValueError as exc:
            raise refuse(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise refuse(f"a JSON {type(data).__name__}, not an object")
        version = data.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) and version != FORMAT_VERSION:
            raise refuse(f"index format {version}, this version reads format {FORMAT_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise refuse(f"unexpected fields {unknown}")
        for f in fields(cls):
            if f.name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise refuse(f"field {f.name!r} is missing")
                continue
            check = _MANIFEST_TYPES[f.name]
            if not check(data[f.name]):
                raise refuse(f"field {f.name!r} has the wrong type")
        if data["dimension"] <= 0:
            raise refuse("dimension must be positive")
        return cls(**data)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_map(value: object, item: Callable[[object], bool]) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and item(v) for k, v in value.items())


_MANIFEST_TYPES: dict[str, Callable[[object], bool]] = {
    "format_version": _is_int,
    "model": lambda v: isinstance(v, str),
    "model_hash": lambda v: isinstance(v, str),
    "dimension": _is_int,
    "chunking": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
    "built_at": lambda v: isinstance(v, str),
    "corpus_dir": lambda v: isinstance(v, str),
    "documents": lambda v: _is_str_map(v, lambda x: isinstance(x, str)),
    "counts": lambda v: _is_str_map(v, _is_int),
    "skipped": lambda v: _is_str_map(
        v, lambda x: isinstance(x, list) and len(x) in (2, 3) and all(isinstance(i, str) for i in x)
    ),
    "generation": lambda v: isinstance(v, str),
    "files": lambda v: _is_str_map(v, lambda x: isinstance(x, str)),
    "abstain": lambda v: _is_str_map(v, lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)),
    "scorer": lambda v: isinstance(v, str),
    "profile": lambda v: isinstance(v, str),
}


def mismatch(manifest: Manifest, *, model: str, model_hash: str, dimension: int, chunking: dict[str, object]) -> str | None:
    """Why an index cannot be used with these settings, or None when it can."""
    if manifest.format_version != FORMAT_VERSION:
        return f"index format {manifest.format_version}, this version reads format {FORMAT_VERSION}"
    if manifest.model != model or manifest.model_hash != model_hash:
        return f"built with model {manifest.model!r}, asked to use {model!r}"
    if manifest.dimension != dimension:
        return f"vectors of dimension {manifest.dimension}, the model gives {dimension}"
    if manifest.chunking != chunking:
        return f"chunking {manifest.chunking}, asked for {chunking}"
    if manifest.scorer and manifest.scorer != scorer_sha256():
        return f"answer scorer {manifest.scorer[:12]}, this version ships {scorer_sha256()[:12]}"
    if manifest.profile and manifest.profile != profile_sha256():
        return f"word profile {manifest.profile[:12]}, the profile in force is {profile_sha256()[:12]}"
    return None


INDEX_FILES = (DB, VECTORS, LEXICAL, UNIT_VECTORS)


def verify_files(path: Path, manifest: Manifest) -> None:
    """Check every file of a generation against the sha256 its manifest records.

    An index folder is data from disk, not trusted code: a flipped byte in
    ``vectors.faiss`` would otherwise load silently and score passages above 1.
    """
    for name in INDEX_FILES:
        expected = manifest.files.get(name)
        if not expected:
            raise IndexMismatchError(f"{path / MANIFEST} records no checksum for {name}; rebuild with `qa ingest --rebuild`")
        try:
            actual = sha256_file(path / name)
        except FileNotFoundError as exc:
            raise IndexMissingError(f"{path / name} is missing; rebuild with `qa ingest --rebuild`") from exc
        except OSError as exc:
            raise IndexMismatchError(f"{path / name} cannot be read ({exc.strerror or exc}); check its permissions or rebuild "
                                     "with `qa ingest --rebuild`") from exc
        if actual != expected:
            raise IndexMismatchError(f"{path / name} does not match the checksum in its manifest (damaged or altered); "
                                     "rebuild with `qa ingest --rebuild`")


# What faiss.write_index puts before the vectors of an IndexFlatIP: the type's four letters,
# dimension, vector count, two unused counts, "is trained", the metric (0: inner product),
# then the number of float32 values that follow.
_FLAT_IP = b"IxFI"
_FLAT_HEADER = struct.Struct("<4siqqq?iQ")


def check_vectors_file(path: Path, dimension: int) -> None:
    """Refuse a ``vectors.faiss`` whose header does not describe exactly the bytes that follow it.

    Called before ``faiss.read_index``, which believes the vector count it
    reads and allocates for it: a small file claiming 2^30 vectors would take
    gigabytes before failing (2^34 would be killed for memory). Raises
    ``IndexMismatchError`` saying to rebuild.
    """

    def refuse(why: str) -> IndexMismatchError:
        return IndexMismatchError(f"{path} {why}; rebuild with `qa ingest --rebuild`")

    try:
        with path.open("rb") as handle:
            head = handle.read(_FLAT_HEADER.size)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise refuse(f"cannot be read ({exc.strerror or exc})") from exc
    if len(head) < _FLAT_HEADER.size:
        raise refuse(f"is too short to be a vector index ({size} bytes)")
    kind, dim, count, _, _, _, metric, values = _FLAT_HEADER.unpack(head)
    if kind != _FLAT_IP or metric != 0:
        raise refuse("is not a flat inner-product index as this version writes")
    if dim != dimension:
        raise refuse(f"holds vectors of dimension {dim}, the manifest says {dimension}")
    held = size - _FLAT_HEADER.size
    if count < 0 or values != count * dim or held != 4 * count * dim:
        raise refuse(f"declares {count} vectors ({4 * count * dim} bytes) but holds {held} bytes")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


_GENERATION_NAME = re.compile(r"gen-[0-9A-Za-z.-]{1,80}")


def current_generation(index_dir: Path) -> str | None:
    """Name of the generation CURRENT points at, or None when there is no index.

    The name must look like one this module writes, so a damaged CURRENT can
    never send a reader outside the index folder.
    """
    try:
        raw = (index_dir / CURRENT).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexMissingError(f"cannot read {index_dir / CURRENT} ({exc.strerror or exc}); check its permissions") from exc
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        name = "?"
    if not name and not any(p.is_dir() for p in index_dir.glob("gen-*")):
        return None  # an empty pointer and nothing to point at: no index yet
    # An empty CURRENT beside generations is damage, not absence: treating it as "no
    # index" made the next ingest delete the intact generation and embed everything again.
    if not _GENERATION_NAME.fullmatch(name):
        raise IndexMismatchError(f"{index_dir / CURRENT} is damaged (it does not name a generation); rebuild with `qa ingest "
                                 "--rebuild`")
    return name


def _load_manifest(index_dir: Path, name: str) -> Manifest:
    path = index_dir / name / MANIFEST
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise IndexMissingError(f"{path} is missing; rebuild with `qa ingest --rebuild`") from exc
    except UnicodeDecodeError as exc:
        raise IndexMismatchError(f"{path} is not a manifest this version can read (not UTF-8); rebuild with `qa ingest "
                                 "--rebuild`") from exc
    return Manifest.from_json(text, str(path))


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of the current generation; ``IndexMissingError`` when there is none."""
    name = current_generation(index_dir)
    if name is None:
        raise IndexMissingError(f"no index in {index_dir}: build one with `qa ingest` (or `make run`)")
    return _load_manifest(index_dir, name)


_NO_SPACE = ("no space left", "disk is full", "database or disk is full", "disk quota")


def write_failure(index_dir: Path, exc: BaseException) -> IndexWriteError:
    """One line for an index that cannot be written, naming the fix for the usual causes."""
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc))
    code = exc.errno if isinstance(exc, OSError) else None
    if code in (errno.ENOSPC, errno.EDQUOT) or any(word in reason.lower() for word in _NO_SPACE):
        fix = "free some disk space, or build the index elsewhere with --index DIR"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in reason.lower() or "read-only" in reason.lower():
        fix = "make the folder writable, or build the index elsewhere with --index DIR"
    else:
        fix = "check the disk and the folder, or build the index elsewhere with --index DIR"
    return IndexWriteError(f"cannot write the index in {index_dir} ({reason}); {fix}; the previous index is unchanged")


_LOCK_WIDTH = 20  # the pid is written padded to this width, so the lock file is never truncated


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's write lock; refuse at once when another ingest holds it.

    The lock file is opened without following a symbolic link, refused when
    it has other names (a hard link), and never truncated, so a planted
    ``.lock`` link cannot make an ingest overwrite another file. A read-only
    folder still gets the lock (an up-to-date index needs no writing);
    writing a generation there fails with ``IndexWriteError``.
    """
    flags = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | os.O_NONBLOCK
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(index_dir / LOCK, os.O_RDWR | os.O_CREAT | flags, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise
            fd = os.open(index_dir / LOCK, os.O_RDONLY | flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IndexWriteError(f"{index_dir / LOCK} is a symbolic link; remove it (the lock is a plain file)") from exc
        raise write_failure(index_dir, exc) from exc
    try:
        held = os.fstat(fd)
        if not stat.S_ISREG(held.st_mode):
            raise IndexWriteError(f"{index_dir / LOCK} is not a plain file; remove it and run again")
        if held.st_nlink > 1:  # a hard link to someone's file: writing the pid would overwrite its first bytes
            raise IndexWriteError(f"{index_dir / LOCK} is a hard link to another file ({held.st_nlink} names); remove it "
                                  "(the lock is a plain file of its own) and run again")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise IndexLockedError(
                f"another ingest (pid {holder}) is writing {index_dir}; wait for it to finish and run again"
            ) from exc
        with contextlib.suppress(OSError):  # a read-only lock file still locks
            os.pwrite(fd, str(os.getpid()).ljust(_LOCK_WIDTH).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _chunk_from_row(row: Sequence[Any]) -> Chunk:  # an SQLite row: column types are known only at run time
    return Chunk(
        doc_id=str(row[0]), page=int(row[1]), page_label=str(row[2]), section=str(row[3]),
        start=int(row[4]), end=int(row[5]), text=str(row[6]),
    )


def _load_unit_vectors(path: Path, manifest: Manifest) -> np.ndarray:
    """The units' vectors of a generation, checked against the manifest's count and dimension."""
    def refuse(why: str) -> IndexMismatchError:
        return IndexMismatchError(f"{path} {why}; rebuild with `qa ingest --rebuild`")

    try:
        with open(path, "rb") as handle:
            # The header must declare exactly the bytes that follow it, before NumPy allocates what it declares.
            version = np.lib.format.read_magic(handle)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported array format {version}")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(handle, max_header_size=1024)
            declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            held = path.stat().st_size - handle.tell()
            if dtype.hasobject or declared != held:
                raise ValueError(f"declares {declared} bytes of {dtype} but holds {held}")
            handle.seek(0)
            data = np.load(handle, allow_pickle=False)
    except FileNotFoundError as exc:
        raise IndexMissingError(f"{path} is missing; rebuild with `qa ingest --rebuild`") from exc
    except (OSError, ValueError) as exc:
        raise refuse(f"cannot be read ({exc})") from exc
    expected = manifest.counts.get("units")
    if data.ndim != 2 or data.shape[1] != manifest.dimension or data.dtype != np.float16:
        raise refuse(f"holds {data.dtype} vectors of shape {data.shape}, not float16 of dimension {manifest.dimension}")
    if expected is not None and data.shape[0] != expected:
        raise refuse(f"holds {data.shape[0]} unit vectors, the manifest says {expected}")
    return data


def _page_from_row(row: Sequence[Any]) -> Page:
    text = row[3]
    return Page(doc_id=row[0], page=int(row[1]), label=row[2], text=text, units=units_from_json(row[4], text))


def _document_from_row(row: Sequence[Any]) -> Document:
    meta = DocMeta(
        title=str(row[1]), authors=str(row[2]), year=None if row[3] is None else int(row[3]),
        publisher=str(row[4]), url=str(row[5]), licence=str(row[6]),
    )
    return Document(doc_id=str(row[0]), meta=meta, content_hash=str(row[7]), kind=str(row[8]), n_pages=int(row[9]))


_DOC_COLUMNS = "doc_id, title, authors, year, publisher, url, licence, content_hash, kind, n_pages"
_CHUNK_COLUMNS = 'doc_id, page, page_label, section, start, "end", text'


class IndexStore:
    """A loaded, read-only generation: vectors in memory, chunks in SQLite.

    Safe to share between threads: FAISS searches are read-only and each thread
    gets its own SQLite connection.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self._local = threading.local()
        self._pages: OrderedDict[tuple[str, int], Page | None] = OrderedDict()
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._pages_lock = threading.Lock()  # guards both caches
        # CURRENT is read once per attempt, so manifest, vectors and chunks all come
        # from one generation even while an ingest switches to the next. If that
        # generation is pruned while it loads (two ingests in quick succession), retry.
        for attempt in range(3):
            name = current_generation(self.index_dir)
            if name is None:
                raise IndexMissingError(f"no index in {self.index_dir}: build one with `qa ingest` (or `make run`)")
            try:
                self._load(name)
                return
            except (IndexMissingError, IndexMismatchError):
                self.close()
                if attempt == 2 or current_generation(self.index_dir) == name:
                    raise
                log.info("generation %s was replaced while loading; loading the new one", name)

    def _load(self, name: str) -> None:
        self.generation = name
        self.path = self.index_dir / name
        self.manifest = _load_manifest(self.index_dir, name)
        if not (self.path / DB).is_file():
            raise IndexMissingError(f"{self.path / DB} is missing; rebuild with `qa ingest --rebuild`")
        verify_files(self.path, self.manifest)
        check_vectors_file(self.path / VECTORS, self.manifest.dimension)  # before faiss allocates what it declares
        try:
            self.vectors = faiss.read_index(str(self.path / VECTORS))
        except RuntimeError as exc:
            raise IndexMismatchError(f"{self.path / VECTORS} cannot be read ({_first_line(exc)}); rebuild with `qa ingest "
                                     "--rebuild`") from exc
        if self.vectors.d != self.manifest.dimension:
            raise IndexMismatchError(f"{self.path / VECTORS} holds vectors of dimension {self.vectors.d}, the manifest says "
                                     f"{self.manifest.dimension}; rebuild with `qa ingest --rebuild`")
        try:
            self.impacts = lexical.Impacts.load(self.path / LEXICAL, expected_rows=self.manifest.counts.get("chunks"))
        except FileNotFoundError as exc:
            raise IndexMissingError(f"{self.path / LEXICAL} is missing; rebuild with `qa ingest --rebuild`") from exc
        except (OSError, ValueError) as exc:
            raise IndexMismatchError(f"{self.path / LEXICAL} cannot be read ({exc}); rebuild with `qa ingest --rebuild`") from exc
        self.unit_vectors = _load_unit_vectors(self.path / UNIT_VECTORS, self.manifest)
        try:
            self._documents = {d.doc_id: d for d in self._query_documents()}
            chunks = self.count("chunks")
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise IndexMismatchError(f"{self.path / DB} cannot be read ({exc}); rebuild with `qa ingest --rebuild`") from exc
        if self.vectors.ntotal != chunks:
            raise IndexMismatchError(f"{self.path} has {self.vectors.ntotal} vectors for {chunks} chunks; rebuild with `qa "
                                     "ingest --rebuild`")
        if self.impacts.rows != chunks:
            raise IndexMismatchError(f"{self.path / LEXICAL} covers {self.impacts.rows} chunks of {chunks}; rebuild with `qa "
                                     "ingest --rebuild`")

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's read-only connection to the generation's chunk store.

        A thread that first asks after a later ingest has pruned this generation
        cannot open it any more: that is an ``IndexMissingError`` saying to reload.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            path = self.path / DB
            uri = f"file:{quote(path.as_posix())}?mode=ro&immutable=1"
            try:
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.OperationalError as exc:
                if not path.exists():
                    raise IndexMissingError(
                        f"index generation {self.generation} was removed by a newer ingest; "
                        "reload the index (Engine.refresh) to use the current one"
                    ) from exc
                raise IndexMismatchError(f"{path} cannot be opened ({exc}); rebuild with `qa ingest --rebuild`") from exc
            self._local.conn = conn
        return conn

    def _query_documents(self) -> list[Document]:
        rows = self.db.execute(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY doc_id").fetchall()
        return [_document_from_row(r) for r in rows]

    def count(self, table: str) -> int:
        assert table in ("documents", "pages", "chunks")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    @property
    def documents(self) -> dict[str, Document]:
        return self._documents

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        """Chunks by id (the last ones read are kept, as pages are: frozen records of a generation that never changes)."""
        out: dict[int, Chunk] = {}
        with self._pages_lock:
            for cid in ids:
                if cid in self._chunks:
                    self._chunks.move_to_end(cid)
                    out[cid] = self._chunks[cid]
        ids = [cid for cid in ids if cid not in out]
        read: dict[int, Chunk] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(f"SELECT id, {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", part):
                read[int(row[0])] = _chunk_from_row(row[1:])
        if read:
            with self._pages_lock:
                self._chunks.update(read)
                while len(self._chunks) > CHUNK_CACHE:
                    self._chunks.popitem(last=False)
        return {**out, **read}

    def doc_chunks(self, doc_id: str) -> list[tuple[int, Chunk]]:
        rows = self.db.execute(f"SELECT id, {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? ORDER BY id", (doc_id,))
        return [(int(r[0]), _chunk_from_row(r[1:])) for r in rows]

    def chunk_at(self, doc_id: str, page: int, offset: int) -> Chunk | None:
        """The first stored chunk of a page that covers character ``offset`` of it (None if none does)."""
        row = self.db.execute(
            f'SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? AND page = ? AND start <= ? AND "end" > ? '
            "ORDER BY start, id LIMIT 1", (doc_id, page, offset, offset)).fetchone()
        return _chunk_from_row(row) if row else None

    def pages(self, doc_id: str) -> list[Page]:
        rows = self.db.execute("SELECT doc_id, page, label, text, units FROM pages WHERE doc_id = ? ORDER BY page",
                               (doc_id,))
        return [_page_from_row(r) for r in rows]

    def page(self, doc_id: str, page: int) -> Page | None:
        """One page with its text and its units, as ingest stored them.

        The last pages read are kept (a generation never changes, and a page is a
        frozen record, so every thread may share them): each search widens its
        passages over their pages, and questions keep returning to the same ones.
        """
        key = (doc_id, page)
        with self._pages_lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        row = self.db.execute(
            "SELECT doc_id, page, label, text, units FROM pages WHERE doc_id = ? AND page = ?", (doc_id, page)
        ).fetchone()
        found = _page_from_row(row) if row else None
        with self._pages_lock:
            self._pages[key] = found
            while len(self._pages) > PAGE_CACHE:
                self._pages.popitem(last=False)
        return found

    def filtered_ids(self, docs: Sequence[str] | None, year_from: int | None, year_to: int | None) -> np.ndarray | None:
        """Chunk ids allowed by the filters, or None when there is no filter."""
        where: list[str] = []
        params: list[object] = []
        if docs:
            where.append(f"c.doc_id IN ({','.join('?' * len(docs))})")
            params.extend(docs)
        if year_from is not None:
            where.append("d.year >= ?")
            params.append(year_from)
        if year_to is not None:
            where.append("d.year <= ?")
            params.append(year_to)
        if not where:
            return None
        sql = f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE {' AND '.join(where)}"
        return np.fromiter((r[0] for r in self.db.execute(sql, params)), dtype=np.int64)

    def search_dense(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the k nearest chunks, within ``allowed`` when given."""
        if self.vectors.ntotal == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        k = min(k, self.vectors.ntotal)
        if allowed is None:
            scores, ids = self.vectors.search(q, k)
        else:
            # faiss wraps SWIG classes with a keyword __init__ at run time, which its stubs do not declare.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]
            scores, ids = self.vectors.search(q, min(k, len(allowed)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def stems(self, words: Sequence[str]) -> list[str]:
        """The index's own tokens for some words: FTS5 tokenises and stems them as it did the chunks.

        Words pass through a temporary FTS5 table with the index's tokenizer, so
        "Plans" gives "plan" exactly when the index holds "plan". A word FTS5
        splits ("foo_bar") gives each part.
        """
        if not words:
            return []
        conn = self.db
        try:
            if getattr(self._local, "tokenizer", None) is not conn:  # temp tables live and die with a connection
                conn.execute(f"CREATE VIRTUAL TABLE temp.query_words USING fts5(word, tokenize = {_TOKENIZE!r})")
                conn.execute("CREATE VIRTUAL TABLE temp.query_tokens USING fts5vocab(temp, query_words, 'instance')")
                self._local.tokenizer = conn
            conn.execute("DELETE FROM temp.query_words")
            conn.executemany("INSERT INTO temp.query_words (rowid, word) VALUES (?, ?)", list(enumerate(words)))
            return [row[0] for row in conn.execute("SELECT term FROM temp.query_tokens ORDER BY doc, offset")]
        except sqlite3.Error as exc:
            log.warning("could not tokenise %r: %s", list(words), exc)
            return []

    def search_terms(self, words: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25) of the k best chunks for an OR of words; the ranking FTS5's bm25() gives.

        Scores come from the impacts stored with the generation (see ``qa.lexical``),
        so a word found in every other chunk costs one array addition, not a
        BM25 pass over all of them.
        """
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        return self.impacts.search(self.stems(words), k, allowed)

    def matches_any(self, match: str | None) -> bool:
        """Whether any chunk matches an FTS5 expression; no ranking, so a common word costs nothing."""
        if not match:
            return False
        try:
            return self.db.execute("SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", [match]).fetchone() is not None
        except sqlite3.OperationalError as exc:
            log.warning("lexical lookup skipped for %r: %s", match, exc)
            return False

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunk ids, one row each in the order given."""
        if not len(ids):
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        return self.vectors.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def unit_vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some units (``Unit.vector``), one unit-length float32 row each."""
        if not len(ids):
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        rows = self.unit_vectors[np.asarray(ids, dtype=np.int64)].astype(np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1.0)  # float16 storage moves the length in the fourth digit

    def all_unit_vectors(self) -> np.ndarray:
        """Every stored unit vector as stored (float16), row i belonging to the unit whose ``vector`` is i."""
        return self.unit_vectors

    def all_vectors(self) -> np.ndarray:
        """Every stored vector, row i belonging to chunk id i."""
        if self.vectors.ntotal == 0:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        return self.vectors.reconstruct_n(0, self.vectors.ntotal)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class GenerationWriter:
    """Builds a new generation in a temporary folder; ``commit`` makes it current."""

    def __init__(self, index_dir: Path, dimension: int) -> None:
        self.index_dir = index_dir
        self.tmp = index_dir / f"tmp-{uuid.uuid4().hex}"
        self.db: sqlite3.Connection | None = None
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir()
            self.db = sqlite3.connect(self.tmp / DB)
            self.db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + _SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self.abandon()
            raise write_failure(index_dir, exc) from exc
        self.dimension = dimension
        self._vectors: list[np.ndarray] = []
        self._unit_vectors: list[np.ndarray] = []
        self.units = 0  # unit vectors added so far
        self.next_id = 0
        self.pages = 0
        self.documents = 0

    def add(self, document: Document, pages: Sequence[Page], chunks: Sequence[Chunk], vectors: np.ndarray,
            unit_vectors: np.ndarray | None = None) -> None:
        """Store one document with its pages, chunks and their vectors (one row per chunk).

        A page's unit whose ``vector`` is set holds a row of ``unit_vectors``
        (numbered from 0 within this document); it is stored renumbered.
        """
        if len(chunks) != len(vectors):
            raise ValueError(f"{document.doc_id}: {len(chunks)} chunks but {len(vectors)} vectors")
        wanted = [u.vector for p in pages for u in p.units if u.vector is not None]
        have = 0 if unit_vectors is None else len(unit_vectors)
        if wanted and (min(wanted) < 0 or max(wanted) >= have):
            raise ValueError(f"{document.doc_id}: units refer to vector rows up to {max(wanted)} of {have}")
        try:
            self._add(document, pages, chunks, vectors, unit_vectors)
        except (OSError, sqlite3.OperationalError) as exc:
            raise write_failure(self.index_dir, exc) from exc

    def _add(self, document: Document, pages: Sequence[Page], chunks: Sequence[Chunk], vectors: np.ndarray,
             unit_vectors: np.ndarray | None) -> None:
        assert self.db is not None
        m = document.meta
        self.db.execute(
            f"INSERT INTO documents ({_DOC_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (document.doc_id, m.title, m.authors, m.year, m.publisher, m.url, m.licence,
             document.content_hash, document.kind, document.n_pages),
        )
        self.db.executemany(
            "INSERT INTO pages (doc_id, page, label, text, units) VALUES (?,?,?,?,?)",
            [(p.doc_id, p.page, p.label, p.text, units_to_json(p.units, offset=self.units)) for p in pages],
        )
        ids = range(self.next_id, self.next_id + len(chunks))
        self.db.executemany(
            f"INSERT INTO chunks (id, {_CHUNK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            [(i, c.doc_id, c.page, c.page_label, c.section, c.start, c.end, c.text) for i, c in zip(ids, chunks, strict=True)],
        )
        self.db.executemany(
            "INSERT INTO chunks_fts (rowid, text, section, title) VALUES (?,?,?,?)",
            [(i, c.text, c.section, f"{m.title} {file_words(document.doc_id)}") for i, c in zip(ids, chunks, strict=True)],
        )
        if len(chunks):
            self._vectors.append(np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dimension))
        self.next_id += len(chunks)
        if unit_vectors is not None and len(unit_vectors):
            self._unit_vectors.append(np.asarray(unit_vectors, dtype=np.float16).reshape(len(unit_vectors), self.dimension))
            self.units += len(unit_vectors)
        self.pages += len(pages)
        self.documents += 1

    @property
    def counts(self) -> dict[str, int]:
        """Documents, pages and chunks added so far: the ``counts`` the manifest of this generation records.

        Loading checks the recorded chunk count against the stored vectors and BM25
        arrays, so a caller writing its own manifest takes it from here.
        """
        return {"documents": self.documents, "pages": self.pages, "chunks": self.next_id, "units": self.units}

    def commit(self, manifest: Manifest) -> str:
        """Write vectors and manifest, sync, rename into place, then switch CURRENT.

        A failure to write (disk full, read-only, faiss's own write error) is an
        ``IndexWriteError``; CURRENT still names the previous generation.
        """
        try:
            return self._commit(manifest)
        except (OSError, sqlite3.OperationalError) as exc:
            raise write_failure(self.index_dir, exc) from exc
        except RuntimeError as exc:  # faiss reports its I/O errors so
            if "faiss" not in str(exc).lower() and not any(w in str(exc).lower() for w in _NO_SPACE):
                raise
            raise write_failure(self.index_dir, exc) from exc

    def _commit(self, manifest: Manifest) -> str:
        assert self.db is not None
        self.db.commit()
        self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        self.db.commit()
        lexical.build(self.db).save(self.tmp / LEXICAL)
        self.db.close()
        index = faiss.IndexFlatIP(self.dimension)
        if self._vectors:
            index.add(np.concatenate(self._vectors))
        faiss.write_index(index, str(self.tmp / VECTORS))
        units = (np.concatenate(self._unit_vectors) if self._unit_vectors
                 else np.zeros((0, self.dimension), dtype=np.float16))
        with open(self.tmp / UNIT_VECTORS, "wb") as out:
            np.save(out, units, allow_pickle=False)
        name = _new_generation_name(self.index_dir)
        hashes = {item: sha256_file(self.tmp / item) for item in INDEX_FILES}
        final = Manifest(**{**asdict(manifest), "generation": name, "files": hashes, "scorer": scorer_sha256(),
                            "profile": profile_sha256()})
        (self.tmp / MANIFEST).write_text(final.to_json(), encoding="utf-8")
        for item in (MANIFEST, DB, VECTORS, LEXICAL, UNIT_VECTORS):
            fsync_path(self.tmp / item)
        fsync_path(self.tmp)
        os.rename(self.tmp, self.index_dir / name)
        fsync_path(self.index_dir)
        pointer = self.index_dir / f"{CURRENT}.tmp-{uuid.uuid4().hex}"
        pointer.write_text(name + "\n", encoding="utf-8")
        fsync_path(pointer)
        os.replace(pointer, self.index_dir / CURRENT)
        fsync_path(self.index_dir)
        return name

    def abandon(self) -> None:
        """Drop the unfinished generation; the current one is untouched."""
        with contextlib.suppress(Exception):
            if self.db is not None:
                self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _generation_number(name: str) -> int:
    """The sequence number in ``gen-<number>-<time>-<id>``; 0 for other names."""
    match = re.match(r"gen-(\d+)-", name)
    return int(match.group(1)) if match else 0


def generations(index_dir: Path) -> list[str]:
    """Generation folders, oldest first (by sequence number, which the clock cannot reorder)."""
    names = [p.name for p in index_dir.glob("gen-*") if p.is_dir()]
    return sorted(names, key=lambda n: (_generation_number(n), n))


def _new_generation_name(index_dir: Path) -> str:
    number = max((_generation_number(n) for n in generations(index_dir)), default=0) + 1
    return f"gen-{number:06d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def prune(index_dir: Path, keep: int = KEEP_GENERATIONS) -> None:
    """Remove unfinished work and all generations but the current one and the ``keep - 1`` before it.

    Call only under the write lock. A generation newer than the current one was
    renamed into place by an ingest that died before switching CURRENT: it was
    never in use and goes. The previous generation stays, so a reader that
    loaded it before the last switch keeps working.
    """
    if not index_dir.is_dir():
        return
    for item in index_dir.glob("tmp-*"):
        shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
    for item in index_dir.glob(f"{CURRENT}.tmp-*"):
        item.unlink(missing_ok=True)
    try:
        current = current_generation(index_dir)
    except IndexMismatchError:
        return  # a damaged CURRENT: keep every generation until a rebuild replaces it
    names = generations(index_dir)
    if current is None:
        # No CURRENT at all: any generation here was renamed into place by a first
        # ingest that died before switching to it, and was never in use.
        for name in names:
            shutil.rmtree(index_dir / name, ignore_errors=True)
        return
    if current not in names:
        return  # CURRENT names a missing folder: leave the rest for a rebuild
    position = names.index(current)
    kept = set(names[max(0, position - max(keep, 1) + 1) : position + 1])
    for name in names:
        if name not in kept:
            shutil.rmtree(index_dir / name, ignore_errors=True)


def iter_documents(store: IndexStore, doc_ids: Iterable[str]) -> Iterator[tuple[Document, list[Page], list[tuple[int, Chunk]]]]:
    """Documents with their pages and (id, chunk) pairs, for carrying into a new generation."""
    for doc_id in doc_ids:
        yield store.documents[doc_id], store.pages(doc_id), store.doc_chunks(doc_id)
