"""BM25 over precomputed term impacts: FTS5's own ranking, without FTS5's cost at query time.

FTS5 ranks an OR query by computing BM25 for every row that holds any of its
terms. In a children's services corpus "children" or "care" sit in half the
chunks, so at a few hundred thousand chunks one question costs hundreds of
milliseconds. BM25 splits into one number per (term, chunk), fixed once the
index is built: its "impact". This module reads FTS5's own tokens (so stems
and column contents are exactly the index's), stores every impact in a
compressed sparse layout, and scores a query by adding a few postings.

The formula is FTS5's ``bm25()`` with column weights 1 and k1 = 1.2, b = 0.75:
idf(t) = ln((N - n_t + 0.5) / (n_t + 0.5)), at least 1e-6; a chunk's impact for
t is idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen)), with tf
counted over all columns and len the chunk's length in tokens over all columns.
Saved with ``numpy.savez`` and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import logging
import sqlite3
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
FILE = "lexical.npz"


@dataclass(frozen=True, eq=False)
class Impacts:
    """Postings by term: ``ids[starts[r]:starts[r + 1]]`` hold term r's chunks, ``scores`` their impacts."""

    terms: dict[str, int]
    starts: np.ndarray  # int64, len(terms) + 1
    ids: np.ndarray  # int32 chunk ids, ascending within a term
    scores: np.ndarray  # float32
    rows: int  # chunks in the index

    def search(self, stems: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25) of the ``k`` best chunks holding any of ``stems``, best first.

        A stem listed twice counts twice, as a term repeated in an FTS5 OR query
        does. Ties go to the lower id.
        """
        rows = [self.terms[s] for s in stems if s in self.terms]
        if not rows or k <= 0 or self.rows == 0:
            return []
        total = np.zeros(self.rows, dtype=np.float32)
        for r in rows:
            lo, hi = self.starts[r], self.starts[r + 1]
            total[self.ids[lo:hi]] += self.scores[lo:hi]
        if allowed is not None:
            mask = np.zeros(self.rows, dtype=bool)
            mask[allowed[(allowed >= 0) & (allowed < self.rows)]] = True
            total[~mask] = 0.0
        hits = np.flatnonzero(total > 0)
        if hits.size > k:
            hits = hits[np.argpartition(-total[hits], k - 1)[:k]]
        order = np.lexsort((hits, -total[hits]))
        return [(int(hits[i]), float(total[hits[i]])) for i in order]

    def save(self, path: Path) -> None:
        names = sorted(self.terms, key=self.terms.__getitem__)
        with path.open("wb") as handle:
            np.savez(handle, terms=np.array(names, dtype=np.str_), starts=self.starts, ids=self.ids,
                     scores=self.scores, rows=np.array([self.rows], dtype=np.int64))

    @classmethod
    def load(cls, path: Path, expected_rows: int | None = None) -> Impacts:
        """Read impacts saved by ``save``; ``ValueError`` for anything else (never unpickles).

        Array sizes are checked against the file before any array is read (see
        ``check_sizes``), and ``rows`` when given (the manifest's chunk count).
        ``FileNotFoundError`` passes through, so a caller can tell a missing file from a bad one.
        """
        try:
            check_sizes(path, expected_rows)
            with np.load(path, allow_pickle=False) as data:
                names = data["terms"]
                starts, ids, scores = data["starts"], data["ids"], data["scores"]
                rows = int(data["rows"][0])
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"not a lexical index ({type(exc).__name__}: {exc})") from exc
        if expected_rows is not None and rows != expected_rows:
            raise ValueError(f"not the lexical index of this generation ({rows} rows, the manifest says {expected_rows})")
        sound = (
            names.dtype.kind == "U" and names.ndim == starts.ndim == ids.ndim == scores.ndim == 1
            and starts.dtype.kind == "i" and ids.dtype.kind == "i" and scores.dtype.kind == "f"
            and len(starts) == len(names) + 1 and len(ids) == len(scores) and rows >= 0
            and (len(starts) == 0 or (starts[0] == 0 and starts[-1] == len(ids) and bool(np.all(np.diff(starts) >= 0))))
            and (len(ids) == 0 or (int(ids.min()) >= 0 and int(ids.max()) < rows))
        )
        if not sound:
            raise ValueError("not a lexical index (arrays of the wrong kind or out of step)")
        return cls(terms={t: i for i, t in enumerate(names.tolist())}, starts=starts, ids=ids, scores=scores, rows=rows)


_MEMBERS = {"terms.npy", "starts.npy", "ids.npy", "scores.npy", "rows.npy"}


def check_sizes(path: Path, rows: int | None = None) -> None:
    """Refuse a ``lexical.npz`` whose arrays claim more than the file holds, before reading them.

    ``save`` stores arrays uncompressed, so each member's header must declare
    exactly the bytes that follow it; a 4 MB file declaring a 10^9-element
    array (which NumPy would allocate first) is refused here. ``rows`` bounds
    the row count and so the postings of a sound file.
    """
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if {i.filename for i in infos} != _MEMBERS:
            raise ValueError(f"unexpected members {sorted(i.filename for i in infos)}")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{info.filename} is compressed; this version writes plain arrays")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=1024)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=1024)
                else:
                    raise ValueError(f"{info.filename}: unsupported array format {version}")
                if dtype.hasobject:
                    raise ValueError(f"{info.filename} holds objects")
                declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if declared != info.file_size - member.tell():
                    raise ValueError(f"{info.filename} declares {declared} bytes but holds {info.file_size - member.tell()}")
                if info.filename == "rows.npy" and shape != (1,):
                    raise ValueError("rows.npy is not one number")
                if rows is not None and info.filename == "starts.npy" and len(shape) == 1 and shape[0] > 0 and rows == 0:
                    raise ValueError("postings for an empty index")


def build(db: sqlite3.Connection, table: str = "chunks_fts") -> Impacts:
    """Impacts of every (term, chunk) in an FTS5 table, read from its own token list.

    Chunk ids are the table's rowids, 0 .. rows-1.
    """
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.impact_tokens USING fts5vocab(main, {table}, 'instance')")
    n = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    terms: dict[str, int] = {}
    term_of: list[int] = []
    ids: list[int] = []
    counts: list[int] = []
    for term, doc, count in db.execute("SELECT term, doc, COUNT(*) FROM temp.impact_tokens GROUP BY term, doc"):
        term_of.append(terms.setdefault(term, len(terms)))
        ids.append(doc)
        counts.append(count)
    db.execute("DROP TABLE temp.impact_tokens")
    term_arr = np.asarray(term_of, dtype=np.int64)
    id_arr = np.asarray(ids, dtype=np.int64)
    tf = np.asarray(counts, dtype=np.float64)
    length = np.bincount(id_arr, weights=tf, minlength=n)  # tokens per chunk, all columns
    avg = float(length.sum()) / max(n, 1) or 1.0
    per_term = np.bincount(term_arr, minlength=len(terms))
    idf = np.log((n - per_term + 0.5) / (per_term + 0.5))
    idf[idf <= 0] = 1e-6
    impact = idf[term_arr] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length[id_arr] / avg))
    order = np.lexsort((id_arr, term_arr))  # by term, then chunk
    starts = np.zeros(len(terms) + 1, dtype=np.int64)
    np.cumsum(per_term, out=starts[1:])
    log.info("lexical impacts: %d terms, %d postings over %d chunks", len(terms), len(id_arr), n)
    return Impacts(terms=terms, starts=starts, ids=id_arr[order].astype(np.int32),
                   scores=impact[order].astype(np.float32), rows=n)
