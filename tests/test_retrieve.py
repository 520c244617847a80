"""Pure retrieval functions: FTS5 query quoting, fusion, diversity, widening."""

from __future__ import annotations

import sqlite3

import pytest

from qa.records import Chunk
from qa.retrieve import (
    Candidate,
    FusionSettings,
    diversify,
    fill,
    fts_query,
    fuse,
    widen,
)
from qa.text import key_terms, query_terms, sentence_start, stem


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text, section, title, tokenize = 'porter unicode61 remove_diacritics 2')")
    db.executemany(
        "INSERT INTO t (rowid, text, section, title) VALUES (?,?,?,?)",
        [
            (1, "Kinship carers and foster care in Leeds", "Findings", "Leeds report"),
            (2, "Caseloads fell and staff turnover was lower", "Workforce", "Evaluation"),
            (3, "NEAR the end AND at the start the word near appears", "Odd", "Test"),
        ],
    )
    return db


def _match(db: sqlite3.Connection, question: str) -> list[int]:
    query = fts_query(question)
    assert query is not None
    return [r[0] for r in db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank", (query,))]


@pytest.mark.parametrize(
    "question",
    [
        'What did "kinship carers" say?',
        "foster -care in Leeds",
        "foster* care",
        "kinship AND carers OR NOT foster",
        "NEAR(kinship carers, 2)",
        "title:Leeds section:Findings",
        '"unterminated quote kinship',
        "{a b} ^kinship (carers",
    ],
)
def test_fts_query_reads_operators_as_words(fts: sqlite3.Connection, question: str) -> None:
    hits = _match(fts, question)  # a syntax error would raise here
    assert hits, f"{question!r} should still find the kinship passage or the operator words"


def test_fts_query_quotes_every_term_and_ors_them() -> None:
    assert fts_query("Kinship carers in Leeds") == '"kinship" OR "carers" OR "leeds"'


def test_fts_query_of_only_stop_words_is_none() -> None:
    assert fts_query("What is it that they do?") is None
    assert fts_query("") is None
    assert fts_query("?!* -- ()") is None


def test_stemming_is_left_to_fts5(fts: sqlite3.Connection) -> None:
    assert _match(fts, "carer") == [1]  # porter: carer ~ carers


def test_query_terms_are_content_words_in_order_without_repeats() -> None:
    assert query_terms("How did the caseloads of caseloads fall in 2016?") == ["caseloads", "fall", "2016"]


def test_weighted_fusion_scales_bm25_by_the_best_of_the_query() -> None:
    ranked = fuse({1: 0.5, 2: 0.4}, {2: 10.0, 3: 5.0}, FusionSettings(method="weighted", dense_weight=0.5))
    scores = {c.chunk_id: c.score for c in ranked}
    assert scores[2] == pytest.approx(0.5 * 0.4 + 0.5 * 1.0)
    assert scores[1] == pytest.approx(0.25)
    assert scores[3] == pytest.approx(0.25)
    assert ranked[0].chunk_id == 2
    assert [c.chunk_id for c in ranked[1:]] == [1, 3]  # ties broken by id


def test_rrf_fusion_rewards_agreement() -> None:
    ranked = fuse({1: 0.9, 2: 0.8}, {3: 9.0, 2: 8.0}, FusionSettings(method="rrf", dense_weight=0.5, rrf_k=60))
    assert ranked[0].chunk_id == 2  # second in both lists beats first in one
    assert {c.chunk_id for c in ranked} == {1, 2, 3}


def test_fusion_of_nothing_is_empty() -> None:
    assert fuse({}, {}, FusionSettings()) == []


def _chunk(doc: str, page: int, start: int, end: int) -> Chunk:
    return Chunk(doc, page, str(page), "", start, end, "x" * (end - start))


def test_diversify_keeps_one_per_page_then_fills_with_the_rest() -> None:
    chunks = {1: _chunk("a", 1, 0, 100), 2: _chunk("a", 1, 100, 200), 3: _chunk("a", 2, 0, 100), 4: _chunk("b", 1, 0, 100)}
    ranked = [Candidate(i, 0.0, 0.0, 1.0 - i / 10) for i in (1, 2, 3, 4)]
    picked = diversify(ranked, chunks, 3, FusionSettings(per_page=1))
    assert [c.chunk_id for c in picked] == [1, 3, 4]
    picked = diversify(ranked, chunks, 4, FusionSettings(per_page=1))
    assert [c.chunk_id for c in picked] == [1, 3, 4, 2]  # too few pages: the second chunk of page 1 fills


def test_diversify_drops_near_duplicates_even_when_filling() -> None:
    chunks = {1: _chunk("a", 1, 0, 100), 2: _chunk("a", 1, 5, 100)}
    picked = diversify([Candidate(1, 0, 0, 1.0), Candidate(2, 0, 0, 0.9)], chunks, 2, FusionSettings(per_page=5))
    assert [c.chunk_id for c in picked] == [1]


def test_diversify_skips_unknown_chunks() -> None:
    picked = diversify([Candidate(9, 0, 0, 1.0)], {}, 3, FusionSettings())
    assert picked == []


def test_widen_grows_towards_the_better_neighbour_within_the_limit() -> None:
    chunk = _chunk("a", 1, 100, 200)
    near = {4: _chunk("a", 1, 0, 100), 6: _chunk("a", 1, 200, 300), 7: _chunk("a", 1, 300, 400), 8: _chunk("a", 2, 0, 100)}
    assert widen(5, chunk, near, {4: 0.1, 6: 0.9, 7: 0.2}, 300) == (100, 400)
    assert widen(5, chunk, near, {4: 0.9, 6: 0.1}, 200) == (0, 200)
    assert widen(5, chunk, near, {}, 100) == (100, 200)
    assert widen(5, chunk, near, {4: 0.1, 6: 0.9, 7: 0.2}, 10_000) == (0, 400)  # never onto page 2


def test_widen_fills_what_whole_chunks_leave_on_the_better_side() -> None:
    text = "".join(f"Sent {i:03d}. " for i in range(40))  # a sentence every 10 characters
    chunk = _chunk("a", 1, 100, 200)
    near = {4: _chunk("a", 1, 0, 100), 6: _chunk("a", 1, 200, 300), 7: _chunk("a", 1, 300, 400)}
    # Chunk 6 joins (250 fits, 300 does not); 50 characters are left for the better of 4 and 7.
    assert widen(5, chunk, near, {4: 0.1, 6: 0.9, 7: 0.5}, 250, text) == (100, 349)
    assert widen(5, chunk, near, {4: 0.6, 6: 0.9, 7: 0.5}, 250, text) == (60, 309)  # the rest goes after
    assert widen(5, chunk, near, {4: 0.6, 6: 0.9, 7: 0.5}, 250) == (100, 300)  # no text: whole chunks only


def test_fill_spends_the_spare_budget_up_to_sentence_or_line_boundaries() -> None:
    text = "Alpha one. Beta two.\nGamma three is here. Delta four.\nEpsilon five. Zeta six."
    start, end = text.index("Gamma"), text.index(" Delta")  # "Gamma three is here."
    # Room for about one more sentence: taken before when before is preferred, else after.
    assert text[slice(*fill(text, start, end, 35, True))] == "Beta two.\nGamma three is here."
    assert text[slice(*fill(text, start, end, 35, False))] == "Gamma three is here. Delta four."
    # Plenty of room: the whole page; no room: unchanged; never a half sentence.
    assert fill(text, start, end, 1000, True) == (0, len(text))
    assert fill(text, start, end, end - start, True) == (start, end)
    assert fill(text, start, end, end - start + 3, True) == (start, end)


def test_a_passage_cut_at_a_wrapped_line_starts_at_its_sentence() -> None:
    text = "Costs fell. The service was\nrun by two councils and\nsaved money. Next one.\n\nnew section text"
    cut = text.index("run by")
    assert text[sentence_start(text, cut, 300):].startswith("The service was\nrun by")
    # Out of reach, or no sentence start before it on the page: left where it was.
    assert sentence_start(text, cut, 10) == cut
    assert sentence_start("a page continued\nfrom before", len("a page continued\n"), 300) == len("a page continued\n")
    # Already at a sentence's start, or after a blank line: unchanged.
    assert sentence_start(text, text.index("Next"), 300) == text.index("Next")
    assert sentence_start(text, text.index("new section"), 300) == text.index("new section")
    assert sentence_start(text, text.index("saved"), 300) == text.index("The service")
    # "para." does not end a sentence.
    cited = "Costs fell. As set out in para. 4 of the guidance, the\nplans were late."
    assert sentence_start(cited, cited.index("plans"), 300) == cited.index("As set out")


def test_widen_stops_at_a_gap_in_the_ids() -> None:
    chunk = _chunk("a", 1, 100, 200)
    assert widen(5, chunk, {7: _chunk("a", 1, 200, 300)}, {7: 1.0}, 1000) == (100, 200)


def test_key_terms_are_names_and_numbers_not_sentence_openers() -> None:
    assert key_terms("What did Ofsted's 2018 inspection of Leeds find?") == ["ofsted", "2018", "leeds"]
    assert key_terms("How were care leavers supported? And What about Wales.") == ["wales"]
    assert key_terms("how do councils record it") == []


def test_stem_matches_simple_inflections() -> None:
    assert stem("plans") == stem("plan")
    assert stem("inspected") == stem("inspect")
    assert stem("Studies") == "study"
    assert stem("is") == "is"
