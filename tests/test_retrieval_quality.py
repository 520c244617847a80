"""Retrieval quality with the real model, and citation integrity of every stored chunk.

The floors asserted here are the figures measured for the defaults (docs/benchmarks.md)
less a small margin, so that a change which costs quality fails here.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pytest

from qa.clean import normalise
from qa.engine import AskSettings, Engine
from qa.evaluate import ASK_K, compare, evaluate, load_questions
from qa.records import Answer
from qa.store import IndexStore

DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.model


def _passages_only(engine: Engine, question: str) -> Answer:
    return engine.ask(question, top_k=ASK_K, with_answer=False)


def _scores(index: Path, embedder, questions: str, with_others: bool = False, baseline: bool = True):
    engine = Engine(index, embedder=embedder)
    return compare(engine, load_questions(DATA / questions), with_others=with_others, baseline=baseline)


def test_sample_questions(sample_index: tuple[Path, Path], real_embedder) -> None:
    results = _scores(sample_index[1], real_embedder, "sample_questions.jsonl", with_others=True)
    hybrid = results.pop("hybrid")
    assert hybrid.recall_at_5 >= 0.9, hybrid.missed
    assert hybrid.mrr_at_10 >= 0.75
    # 9 of 10: "What is the average salary of a children's social worker?" is still answered from
    # passages about social workers (the corpus never mentions pay); see docs/benchmarks.md.
    assert hybrid.flagged_unanswerable >= 0.9, f"answered though unanswerable: {hybrid.wrongly_found}"
    assert hybrid.found_answerable >= 0.95  # 41 of 42: "How long are the round 2 reports?" finds no unit likely
    assert hybrid.recall_at_5 >= results["lexical"].recall_at_5
    assert hybrid.recall_at_5 >= results["baseline"].recall_at_5
    assert hybrid.mrr_at_10 > results["baseline"].mrr_at_10


def test_paraphrased_questions_get_answers_that_state_the_fact(sample_index: tuple[Path, Path],
                                                               real_embedder) -> None:
    """Questions in a user's words (not the page's): the quoted sentences state the fact."""
    hybrid = _scores(sample_index[1], real_embedder, "paraphrase_questions.jsonl")["hybrid"]
    # Floors a question or two below the measured figures (R@5 0.95, answer@ 0.75, 18/20 found, 3/4 flagged).
    assert hybrid.recall_at_5 >= 0.85, hybrid.missed
    assert hybrid.answer_at >= 0.70, f"answer does not state the fact: {hybrid.answer_missed}"
    assert hybrid.found_answerable >= 0.85
    assert hybrid.flagged_unanswerable >= 0.5, f"answered though unanswerable: {hybrid.wrongly_found}"


@pytest.mark.shared
def test_shared_questions(shared_index: tuple[Path, Path], real_embedder) -> None:
    # The baseline over the whole shared corpus takes minutes to embed: `make bench` compares it.
    questions = load_questions(DATA / "shared_questions.jsonl")
    hybrid = compare(Engine(shared_index[1], embedder=real_embedder), questions)["hybrid"]
    # Floors a few questions below the tuned figures (R@5 0.90, R@10 0.94, MRR 0.745, 13/14
    # flagged), so a change that costs real quality fails while a one-question wobble does not.
    assert hybrid.recall_at_5 >= 0.86, hybrid.missed
    assert hybrid.recall_at_10 >= 0.90
    assert hybrid.mrr_at_10 >= 0.70
    # The answer model's threshold answers nine in ten answerable questions held out (0.91 here, 92/101).
    assert hybrid.found_answerable >= 0.89
    assert hybrid.flagged_unanswerable >= 0.70, f"answered though unanswerable: {hybrid.wrongly_found}"
    # Lexical and dense alone are compared on their passages only (their answers are not scored here).
    for mode in ("lexical", "dense"):
        alone = evaluate(questions, partial(_passages_only, Engine(shared_index[1], embedder=real_embedder,
                                                                   settings=AskSettings(mode=mode))))
        assert hybrid.recall_at_5 > alone.recall_at_5, mode


_INVISIBLE = re.compile(r"[\s\-\u00ad]+")


def _squash(text: str) -> str:
    """Text with all whitespace and hyphens removed: line breaks and mended hyphenation do not count."""
    return _INVISIBLE.sub("", normalise(text))


def _raw_pages(path: Path) -> list[str]:
    if path.suffix.lower() != ".pdf":  # a text document's pages are its reader's cuts at headings
        from qa.readers import read_document

        return [page.text for page in read_document(path, path.name).pages]
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]


def _check_citations(corpus: Path, index: Path) -> tuple[int, list[str]]:
    """Every chunk's text is on the physical page it cites, as pypdf reads that page afresh.

    Each line of a chunk must be on its page; the whole chunk must be one span of
    the page except where cleaning dropped a line inside it (a lone number taken
    for a page number). Returns the number of chunks and those not in one span.
    """
    store = IndexStore(index)
    checked = 0
    split: list[str] = []
    try:
        for doc_id in store.documents:
            pages = [_squash(text) for text in _raw_pages(corpus / doc_id)]
            for _, chunk in store.doc_chunks(doc_id):
                assert 1 <= chunk.page <= len(pages), f"{doc_id}: page {chunk.page} does not exist"
                page = pages[chunk.page - 1]
                for line in chunk.text.splitlines():
                    assert _squash(line) in page, f"{doc_id} p. {chunk.page}: {line[:80]!r} is not on that page"
                if _squash(chunk.text) not in page:
                    split.append(f"{doc_id} p. {chunk.page}")
                checked += 1
    finally:
        store.close()
    return checked, split


def test_every_sample_chunk_is_on_the_page_it_cites(sample_index: tuple[Path, Path]) -> None:
    checked, split = _check_citations(*sample_index)
    assert checked > 50 and not split, split


@pytest.mark.shared
def test_every_shared_chunk_is_on_the_page_it_cites(shared_index: tuple[Path, Path]) -> None:
    checked, split = _check_citations(*shared_index)
    assert checked > 4000
    assert len(split) <= 0.01 * checked, split[:20]


def test_int8_model_keeps_sample_quality_and_is_recorded_in_the_index(
    sample_index: tuple[Path, Path], real_embedder, tmp_path: Path
) -> None:
    """The int8 form of the bundled model: recall within a question of full precision, and an
    index built with it is queried with it (and refuses the full-precision model)."""
    from qa.embed import BUNDLED_INT8, load_embedder
    from qa.errors import IndexMismatchError
    from qa.ingest import IngestSettings, ingest

    int8 = load_embedder(BUNDLED_INT8)
    assert int8.name != real_embedder.name and int8.fingerprint != real_embedder.fingerprint
    sentences = ["Caseloads fell to fifteen children per social worker.", "The hub offered teenagers a bed for a few nights."]
    full, small = real_embedder.embed(sentences), int8.embed(sentences)
    cosines = (full * small).sum(axis=1)
    assert (cosines > 0.85).all() and (cosines < 0.9999).all(), cosines  # close, yet really quantised

    index = tmp_path / "index-int8"
    ingest(sample_index[0], index, int8, settings=IngestSettings(workers=0))
    engine = Engine(index)  # no model given: the one recorded in the index
    assert engine.embedder.name == BUNDLED_INT8
    questions = load_questions(DATA / "sample_questions.jsonl")
    quantised = compare(engine, questions)["hybrid"]
    reference = compare(Engine(sample_index[1], embedder=real_embedder), questions)["hybrid"]
    one_question = 1 / sum(1 for q in questions if q.gold)
    assert quantised.recall_at_5 >= reference.recall_at_5 - one_question - 1e-9, quantised.missed
    assert quantised.mrr_at_10 >= 0.75
    one_unanswerable = 1 / sum(1 for q in questions if not q.gold)
    assert quantised.flagged_unanswerable >= reference.flagged_unanswerable - one_unanswerable - 1e-9
    with pytest.raises(IndexMismatchError, match="rebuild"):
        Engine(index, embedder=real_embedder)


def test_each_quote_is_cited_to_the_section_that_holds_it(sample_index: tuple[Path, Path], real_embedder) -> None:
    """A passage widened back over an earlier section cites the section its quote stands in, not its hit's."""
    engine = Engine(sample_index[1], embedder=real_embedder)
    store = IndexStore(sample_index[1])
    questions = [q.question for q in load_questions(DATA / "sample_questions.jsonl")]
    checked = 0
    for question in [*questions, "What did the wave 1 evaluation recommend?"]:
        answer = engine.ask(question)
        seen: set[int] = set()
        for sentence in answer.sentences:
            # The passage the quote is copied from (a fact several passages state is quoted from one, citing all).
            holders = [p for p in answer.passages if p.rank in sentence.passages
                       and _squash(sentence.text) in _squash(p.chunk.text)]
            assert holders, (question, sentence.text)
            passage = holders[0]
            if passage.rank in seen:  # a passage names one section: that of the first quote taken from it
                continue
            seen.add(passage.rank)
            # The stored chunks of that page holding the quote's first words: one names the cited section.
            sections = {c.section for _, c in store.doc_chunks(passage.chunk.doc_id)
                        if c.page == passage.chunk.page and _squash(sentence.text)[:30] in _squash(c.text)}
            assert passage.chunk.section in sections, (question, sentence.text, passage.chunk.section, sections)
            checked += 1
    store.close()
    assert checked >= 15
