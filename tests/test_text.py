"""The one text module: folding, stems, and sentences that survive abbreviations."""

from __future__ import annotations

from qa.text import content_stems, cut_points, fold, key_terms, query_terms, search_terms, stem, units


def test_fold_straightens_quotes_and_whitespace() -> None:
    assert fold("  The \u201cbest\u201d  council\u2019s\nplan ") == 'the "best" council\'s plan'


def test_stems_and_terms() -> None:
    assert stem("plans") == stem("plan") and stem("inspected") == "inspect"
    assert query_terms("How many social workers left their jobs?") == ["social", "workers", "left", "jobs"]
    assert content_stems("Plans were inspected") == {"plan", "inspect"}
    assert key_terms("What did Ofsted find in Leeds in 2018?") == ["ofsted", "leeds", "2018"]


def test_sentences_survive_abbreviations() -> None:
    text = ("Dr. Smith said that No. 3 was the best, see para. 4.2 of the report. The council saved £2.6 million "
            "(21.6%) e.g. on agency staff. Another sentence ends here.")
    assert [" ".join(u.text.split()) for u in units(text) if u.kind == "sentence"] == [
        "Dr. Smith said that No. 3 was the best, see para. 4.2 of the report.",
        "The council saved £2.6 million (21.6%) e.g. on agency staff.",
        "Another sentence ends here.",
    ]


def test_units_mark_headings_items_and_fragments() -> None:
    text = ("3 A later count\nThe National Audit Office revisited the first round in 2022. It counted 56 projects "
            "completed between\n2014 and 2016.\nIt listed:\n- one thing;\n- another\nthing wrapped.\n"
            "A tail that the edge of the passage cut off before its sentence could end")
    kinds = [(u.kind, u.text) for u in units(text)]
    assert kinds[0] == ("heading", "3 A later count")
    assert ("sentence", "It counted 56 projects completed between\n2014 and 2016.") in kinds
    assert ("leadin", "It listed:") in kinds
    assert ("item", "another\nthing wrapped.") in kinds
    assert kinds[-1][0] == "fragment"
    for u in units(text):
        assert text[u.start:u.end] == u.text


def test_cut_points_skip_abbreviations() -> None:
    text = "See para. 4 for this. Next one."
    assert cut_points(text, 0, len(text), ends=True) == [text.index(" Next")]


def test_find_spans_locates_quoted_sentences_across_line_breaks() -> None:
    from qa.text import find_spans

    text = "Intro. The council projected\nsavings of £2.6 million. Then more. The council projected savings"
    spans = find_spans(text, ["The council projected savings of £2.6 million.", "Then more."])
    assert [text[a:b] for a, b in spans] == ["The council projected\nsavings of £2.6 million.", "Then more."]


def test_numbered_paragraphs_are_running_text_but_numbered_lists_stay_lists() -> None:
    """Inspection reports number their paragraphs; each sentence of one must be quotable on its own."""
    text = ("12. The number of care leavers in education, employment or training\n"
            "is improving. Currently, 79% of care leavers are EET, compared to 49%\n"
            "in 2013-14.\n"
            "\n"
            "The service gave two reasons:\n"
            "1. Staff were new. Most had joined that year.\n"
            "2. Referrals rose.\n")
    found = units(text)
    kinds = [(u.kind, " ".join(u.text.split())) for u in found]
    assert ("sentence", "The number of care leavers in education, employment or training is improving.") in kinds
    assert ("sentence", "Currently, 79% of care leavers are EET, compared to 49% in 2013-14.") in kinds
    # After a lead-in, a numbered entry is one item of its list, even with two sentences.
    assert ("item", "Staff were new. Most had joined that year.") in kinds
    assert ("item", "Referrals rose.") in kinds
    for u in found:
        assert text[u.start:u.end] == u.text


def test_an_entry_too_long_to_quote_whole_is_cut_into_sentences() -> None:
    long_entry = "- " + " ".join(f"Sentence number {i} says something about kinship care." for i in range(10))
    kinds = {u.kind for u in units("Notes:\n" + long_entry + "\n")}
    assert "item" not in kinds and "sentence" in kinds


def test_a_heading_right_after_a_paragraph_is_not_glued_to_the_next_sentence() -> None:
    """PDF text often has no blank line between a paragraph and the next heading."""
    text = ("The roll-out was slow in the first year, and most areas said the guidance came late to them.\n"
            "Family Network Support Packages (FNSPs)\n"
            "The roll-out of FNSPs was said to be initially slow across Wave 1 and 2 areas alike.\n")
    kinds = [(u.kind, u.text) for u in units(text)]
    assert ("heading", "Family Network Support Packages (FNSPs)") in kinds
    assert ("sentence", "The roll-out of FNSPs was said to be initially slow across Wave 1 and 2 areas alike.") in kinds
    # A lead-in's short entries are not headings.
    listed = units("The three case study areas were:\nDorset and Wolverhampton\nLincolnshire as well.\n")
    assert "heading" not in {u.kind for u in listed}


def test_search_terms_add_the_reports_words_for_plain_ones() -> None:
    terms = search_terms("How are kids in care doing at school in Herts?")
    assert terms[:4] == query_terms("How are kids in care doing at school in Herts?")  # the question's own first
    assert {"children", "looked", "education", "hertfordshire"} <= set(terms)
    assert len(terms) == len(set(terms))
    # A phrase counts only as a phrase: "parents" alone is not "foster parents".
    assert "carers" in search_terms("Do foster parents get training?")
    assert "carers" not in search_terms("Do parents get training?")


def test_search_terms_leave_questions_without_plain_words_alone() -> None:
    question = "What did Ofsted find about pathway plans in Leeds in 2018?"
    assert search_terms(question) == query_terms(question)
    assert search_terms("kids in care", {}) == query_terms("kids in care")
    assert search_terms("kids", {"kids": "children young people"}) == ["kids", "children", "young", "people"]
