"""The engine over a small generated corpus, with the fake embedder."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa import Engine, IndexMismatchError, IndexMissingError
from qa.abstain import AbstainPolicy
from qa.engine import AskSettings
from qa.ingest import IngestSettings, ingest

from conftest import FakeEmbedder, make_pdf

FOSTER = (
    "Foster carers in the Northshire project received weekly supervision from a clinical psychologist. "
    "Placement breakdowns fell during the two years of the project, and carers said they felt supported."
)
CAPS = (
    "Caseloads for social workers in Southby were reduced to fifteen children each. "
    "Every project that aimed to reduce caseloads succeeded in doing so within the first year."
)
TEEN = (
    "Teenagers on the edge of care in Northshire were offered a key worker and a bed in a hub. "
    "Fewer teenagers entered care after the hub opened, the evaluation of the project reported."
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    make_pdf(root / "northshire.pdf", [FOSTER, TEEN, "Annex. Glossary of terms used in this report."],
             header="Northshire evaluation", title="Northshire evaluation")
    (root / "southby.md").parent.mkdir(parents=True, exist_ok=True)
    (root / "southby.md").write_text("# Southby caseloads\n\n" + CAPS + "\n", encoding="utf-8")
    (root / "sources.csv").write_text(
        "path,title,authors,year,publisher,url,licence\n"
        "northshire.pdf,Northshire evaluation,A. Author,2016,Example Council,https://example.org/n,OGL\n"
        "southby.md,Southby caseloads,B. Author,2019,Southby Trust,,\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def engine(corpus: Path, tmp_path: Path) -> Engine:
    embedder = FakeEmbedder()
    ingest(corpus, tmp_path / "index", embedder, settings=IngestSettings(workers=0))
    settings = AskSettings(abstain=AbstainPolicy(min_dense=0.2, min_sentence=0.2))
    return Engine(tmp_path / "index", embedder=embedder, settings=settings)


def test_best_passage_is_cited_to_its_page_and_catalogue_metadata(engine: Engine) -> None:
    answer = engine.ask("Did teenagers on the edge of care enter care less often?", top_k=3)
    top = answer.passages[0]
    assert top.chunk.doc_id == "northshire.pdf" and top.chunk.page == 2
    assert "Fewer teenagers entered care" in " ".join(top.chunk.text.split())
    assert top.citation.short == "Northshire evaluation (2016), p. 2"
    assert "https://example.org/n" in top.citation.reference and "A. Author" in top.citation.reference


def test_running_header_is_not_part_of_passages(engine: Engine) -> None:
    answer = engine.ask("foster carers supervision psychologist", top_k=3)
    assert all("Northshire evaluation" not in p.chunk.text for p in answer.passages if p.chunk.doc_id == "northshire.pdf")


def test_doc_and_year_filters(engine: Engine) -> None:
    only_md = engine.ask("caseloads supervision teenagers", docs=["southby.md"], top_k=5)
    assert {p.chunk.doc_id for p in only_md.passages} == {"southby.md"}
    recent = engine.ask("caseloads supervision teenagers", year_from=2018, top_k=5)
    assert {p.document.year for p in recent.passages} == {2019}
    none = engine.ask("caseloads", year_to=2000)
    assert none.passages == () and not none.found


def test_answer_sentences_are_quoted_from_the_passages(engine: Engine) -> None:
    answer = engine.ask("Were caseloads for social workers reduced?", top_k=3)
    assert answer.found and answer.sentences
    by_rank = {p.rank: " ".join(p.chunk.text.split()) for p in answer.passages}
    for sentence in answer.sentences:
        assert all(sentence.text in by_rank[r] for r in sentence.passages)


def test_follow_up_is_searched_with_the_previous_question(engine: Engine) -> None:
    answer = engine.ask("what about for teenagers?", history=["Did fewer children enter care in Northshire?"])
    assert answer.query.startswith("Did fewer children enter care in Northshire?")
    assert answer.merged
    assert answer.passages[0].chunk.page == 2


def test_self_contained_and_off_topic_questions_are_not_merged(engine: Engine) -> None:
    first = engine.ask("Did fewer children enter care in Northshire?")
    alone = engine.ask("Were caseloads for social workers reduced?", history=[first])
    assert alone.query == "Were caseloads for social workers reduced?" and not alone.merged
    router = engine.ask("And how do I reset my broadband router password?", history=[first])
    assert not router.merged and router.query == "And how do I reset my broadband router password?"
    assert not router.found


def test_no_follow_up_onto_an_unanswered_turn(engine: Engine) -> None:
    unanswered = engine.ask("How do I bake sourdough bread at home?")
    assert not unanswered.found
    follow = engine.ask("what about for teenagers?", history=[unanswered])
    assert not follow.merged and follow.query == "what about for teenagers?"


def test_abstain_thresholds_are_recorded_with_the_model(engine: Engine) -> None:
    manifest = engine.store.manifest
    assert manifest.abstain and manifest.abstain["min_dense"] > 0
    assert engine.policy().min_dense == 0.2  # the settings given win over the recorded ones


def test_context_is_the_text_around_a_passage_on_its_page(engine: Engine) -> None:
    passage = engine.ask("Placement breakdowns fell during the two years", top_k=1).passages[0]
    page = engine.page(passage.chunk.doc_id, passage.chunk.page)
    assert page is not None
    before, after = engine.context(passage)
    assert page.text == before + passage.chunk.text + after or (before + passage.chunk.text + after) in page.text


def test_source_path_stays_inside_the_corpus(engine: Engine, corpus: Path) -> None:
    assert engine.source_path("northshire.pdf") == (corpus / "northshire.pdf").resolve()
    assert engine.source_path("../outside.pdf") is None


def test_other_model_is_refused_with_rebuild_advice(corpus: Path, tmp_path: Path) -> None:
    ingest(corpus, tmp_path / "index", FakeEmbedder(), settings=IngestSettings(workers=0))
    with pytest.raises(IndexMismatchError, match="rebuild"):
        Engine(tmp_path / "index", embedder=FakeEmbedder(dimension=32))


def test_missing_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="qa ingest"):
        Engine(tmp_path / "nothing", embedder=FakeEmbedder())


def test_empty_question_finds_nothing(engine: Engine) -> None:
    answer = engine.ask("   ")
    assert not answer.found and answer.passages == ()


def test_warm_up_runs_the_encoder_and_leaves_answers_as_they_were(engine: Engine) -> None:
    question = "Were caseloads for social workers reduced?"
    before = engine.ask(question, top_k=3)
    embedder = engine.embedder
    assert isinstance(embedder, FakeEmbedder)
    calls = embedder.calls
    engine.warm_up()
    assert embedder.calls > calls
    assert engine.ask(question, top_k=3) == before


def test_plain_words_find_the_reports_words(corpus: Path, tmp_path: Path) -> None:
    """"kids" is not in the corpus; with the plain words, lexical search also looks for "children"."""
    embedder = FakeEmbedder()
    ingest(corpus, tmp_path / "index", embedder, settings=IngestSettings(workers=0))
    question = "did fewer kids go into foster placements?"
    with_words = Engine(tmp_path / "index", embedder=embedder, settings=AskSettings(mode="lexical"))
    without = Engine(tmp_path / "index", embedder=embedder, settings=AskSettings(mode="lexical", plain_words=False))
    lexical = with_words.ask(question, top_k=3, with_answer=False).passages
    plain = without.ask(question, top_k=3, with_answer=False).passages
    assert any("Caseloads for social workers" in " ".join(p.chunk.text.split()) for p in lexical)  # "children"
    assert not any("Caseloads for social workers" in " ".join(p.chunk.text.split()) for p in plain)


def test_a_number_run_into_the_file_name_counts_as_evidence(tmp_path: Path) -> None:
    """"phase9" in a file name names phase 9: a question about phase 9 is answered, one about phase 8 is not."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "pressures-phase9.md").write_text(
        "# Responses\n\nIn all, 123 local authorities responded to the survey and sent in their data.\n",
        encoding="utf-8")
    embedder = FakeEmbedder()
    ingest(root, tmp_path / "index", embedder, settings=IngestSettings(workers=0))
    engine = Engine(tmp_path / "index", embedder=embedder,
                    settings=AskSettings(abstain=AbstainPolicy(min_dense=0.0, min_sentence=0.0)))
    # The evidence test (asked without an answer): the fake embedder's cosines mean nothing to the answer model.
    assert engine.ask("how many local authorities responded to the survey in phase 9", with_answer=False).found
    assert not engine.ask("how many local authorities responded to the survey in phase 8", with_answer=False).found


def test_answer_reads_units_with_their_titles_embedding_each_title_once(engine: Engine) -> None:
    embedder = engine.embedder
    assert isinstance(embedder, FakeEmbedder)
    question = "Were caseloads for social workers reduced?"
    first = engine.ask(question, top_k=3)
    assert first.found and first.sentences
    assert set(engine._titles) >= {p.document.title for p in first.passages[:3]}
    count = embedder.texts_embedded
    assert engine.ask(question, top_k=3) == first
    repeat = embedder.texts_embedded - count  # the question and its units; the titles are known by now
    plain = Engine(engine.index_dir, embedder=embedder, settings=replace(
        engine.settings, answer=replace(engine.settings.answer, title_weight=0.0)))
    count = embedder.texts_embedded
    plain.ask(question, top_k=3)
    assert embedder.texts_embedded - count == repeat and plain._titles == {}


def test_refresh_forgets_the_titles_of_removed_documents(engine: Engine, corpus: Path) -> None:
    engine.ask("Were caseloads for social workers reduced?", top_k=3)
    engine.ask("Did teenagers on the edge of care enter care less often?", top_k=3)
    assert {"Southby caseloads", "Northshire evaluation"} <= set(engine._titles)
    (corpus / "southby.md").unlink()
    ingest(corpus, engine.index_dir, engine.embedder, settings=IngestSettings(workers=0))
    assert engine.refresh() is True
    assert "Southby caseloads" not in engine._titles and "Northshire evaluation" in engine._titles
    again = engine.ask("Did teenagers on the edge of care enter care less often?", top_k=3)
    assert again.passages and all(p.chunk.doc_id == "northshire.pdf" for p in again.passages)


def test_questions_read_the_units_stored_at_ingest_and_split_nothing(engine: Engine, monkeypatch) -> None:
    """Structure is read once, at ingest: asking never runs the sentence splitter."""
    import qa.text

    def no_splitting(text: str) -> list[tuple[int, int]]:
        raise AssertionError(f"sentences split at question time: {text[:60]!r}")

    monkeypatch.setattr(qa.text, "split_spans", no_splitting)
    answer = engine.ask("Were caseloads for social workers reduced?", top_k=3)
    table = engine.ask_by_report("Were caseloads for social workers reduced?")
    assert answer.found and answer.sentences and table.rows
    for passage in answer.passages:
        assert passage.units, f"passage {passage.rank} has no stored units"
        for unit in passage.units:  # offsets into the passage's own text, as stored for its page
            assert passage.chunk.text[unit.start:unit.end] == unit.text
    quoted = {" ".join(u.text.split()) for p in answer.passages for u in p.units}
    assert all(s.text in quoted for s in answer.sentences)


def test_units_keep_their_vectors_when_a_document_is_carried_into_a_new_generation(corpus: Path, tmp_path: Path) -> None:
    """Re-ingesting after another file is added keeps an unchanged document's unit vectors, renumbered."""
    embedder = FakeEmbedder()
    index = tmp_path / "index"
    ingest(corpus, index, embedder, settings=IngestSettings(workers=0))

    def vectors(engine: Engine) -> dict[tuple[str, int, str], np.ndarray]:
        store = engine._store
        return {(d, p.page, u.text): store.unit_vectors_for([u.vector])[0]
                for d in ("northshire.pdf", "southby.md") for p in store.pages(d) for u in p.units if u.vector is not None}

    old = vectors(Engine(index, embedder=embedder))
    (corpus / "aardvark.md").write_text("# Aardvarks\n\nAardvarks dig burrows at night in the savannah.\n", encoding="utf-8")
    report = ingest(corpus, index, embedder, settings=IngestSettings(workers=0))
    assert report.new_or_changed == ("aardvark.md",) and report.embedded_chunks == 1
    new = vectors(Engine(index, embedder=embedder))
    assert len(old) >= 4 and set(new) == set(old)
    assert all(np.array_equal(old[k], new[k]) for k in old)
    assert any("Caseloads for social workers" in text for _, _, text in old)


def test_an_index_of_another_model_is_warned_about_the_scorer(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="qa.engine"):
        Engine(engine.index_dir, embedder=engine.embedder)
    assert any("answer scorer was fitted on the cosines of all-MiniLM-L6-v2" in r.getMessage() and "qa train --extract"
               in r.getMessage() for r in caplog.records)
