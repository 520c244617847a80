"""Stored BM25 impacts rank exactly as FTS5's own bm25() does, at a fraction of the cost."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from qa.lexical import Impacts, build

TOKENIZE = "porter unicode61 remove_diacritics 2"
WORDS = ("children care plan plans planning leeds foster fostering kinship carer carers review reviewed "
         "social worker workers family families court placement placements adoption 2018 2019 ofsted").split()


def _corpus(rows: int, seed: int) -> sqlite3.Connection:
    """An FTS5 table like the index's: three columns, Zipf-like word use, rows of very different lengths."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(text, section, title, tokenize = '{TOKENIZE}')")
    db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('rank', 'bm25(1.0, 1.0, 1.0)')")
    for i in range(rows):
        text = " ".join(rng.choices(WORDS, weights, k=rng.randint(1, 60)))
        section = " ".join(rng.choices(WORDS, k=rng.randint(0, 3)))
        title = " ".join(rng.choices(WORDS, k=rng.randint(0, 4)))
        db.execute("INSERT INTO chunks_fts (rowid, text, section, title) VALUES (?,?,?,?)", (i, text, section, title))
    return db


def _stems(db: sqlite3.Connection, words: list[str]) -> list[str]:
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.w USING fts5(word, tokenize = '{TOKENIZE}')")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.wv USING fts5vocab(temp, w, 'instance')")
    db.execute("DELETE FROM temp.w")
    db.executemany("INSERT INTO temp.w (rowid, word) VALUES (?, ?)", list(enumerate(words)))
    return [r[0] for r in db.execute("SELECT term FROM temp.wv ORDER BY doc, offset")]


def _fts5(db: sqlite3.Connection, words: list[str]) -> dict[int, float]:
    query = " OR ".join(f'"{w}"' for w in words)
    return {int(r): float(s) for r, s in db.execute("SELECT rowid, -rank FROM chunks_fts WHERE chunks_fts MATCH ?", (query,))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_impacts_give_fts5_bm25_for_every_chunk_and_the_same_top_k(seed: int) -> None:
    db = _corpus(400, seed)
    impacts = build(db)
    rng = random.Random(seed)
    for _ in range(40):
        words = rng.sample(WORDS, rng.randint(1, 6))
        if rng.random() < 0.3:
            words.append(words[0])  # a repeated word counts twice, as in FTS5
        expected = _fts5(db, words)
        got = impacts.search(_stems(db, words), 25)
        assert len(got) == min(25, len(expected))
        for chunk_id, score in got:
            assert score == pytest.approx(expected[chunk_id], rel=1e-5)
        best = sorted(expected.values(), reverse=True)[: len(got)]
        assert [s for _, s in got] == pytest.approx(best, rel=1e-5)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_allowed_limits_the_chunks_and_unknown_words_find_nothing() -> None:
    db = _corpus(200, 7)
    impacts = build(db)
    allowed = np.array([3, 5, 8, 13, 21, 34, 55, 89, 144], dtype=np.int64)
    got = impacts.search(_stems(db, ["children", "leeds"]), 50, allowed)
    expected = {i: s for i, s in _fts5(db, ["children", "leeds"]).items() if i in set(allowed.tolist())}
    assert {i for i, _ in got} == set(expected)
    assert impacts.search(["zebra"], 10) == []
    assert impacts.search([], 10) == []
    assert impacts.search(_stems(db, ["leeds"]), 0) == []


def test_saved_impacts_load_without_pickle_and_search_alike(tmp_path: Path) -> None:
    db = _corpus(150, 11)
    impacts = build(db)
    impacts.save(tmp_path / "lexical.npz")
    loaded = Impacts.load(tmp_path / "lexical.npz")
    assert loaded.terms == impacts.terms and loaded.rows == impacts.rows
    stems = _stems(db, ["foster", "carers", "court"])
    assert loaded.search(stems, 30) == impacts.search(stems, 30)


def test_an_empty_table_has_no_postings() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(text, section, title, tokenize = '{TOKENIZE}')")
    impacts = build(db)
    assert impacts.rows == 0 and impacts.terms == {} and impacts.search(["care"], 5) == []
