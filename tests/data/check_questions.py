#!/usr/bin/env python3
"""Verify a development question set (default: shared_questions.jsonl).

For every gold entry it extracts the text of each listed page (pypdf for PDFs,
the whole file as page 1 for .txt seeds), normalises it (NFKC, whitespace
collapsed, case folded) and checks that the ``contains`` phrase is on that page.
It also checks that the phrase is "informative", i.e. it does not occur on more
than MAX_PAGES pages of the same document, and prints the number of questions
per document. A .txt seed may list no pages (``"pages": []``), meaning any page.

When a question has ``answer`` phrases, each must occur on at least one of its
gold pages (1-6 words each); an unanswerable question (empty gold) must have no
answer. A ``kind``, when given, must be one of KINDS. A conversation file (one
object per line with ``turns``, each turn shaped like a question) is checked
turn by turn.

Usage:
    python tests/data/check_questions.py [--root ../shared] [--questions FILE]
        [--min-answerable N] [--min-unanswerable N]

``--root`` is the folder that holds ``corpus/`` and ``seeds/`` (the ``doc``
paths in the question file are relative to it); it defaults to ``shared``
beside the checkout. The minimum counts default to MIN_ANSWERABLE and
MIN_UNANSWERABLE for the default file and to 0 for any other file. Exit status
is 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = HERE / "shared_questions.jsonl"
# <checkout>/tests/data/check_questions.py -> parents[3] is the folder holding <checkout>
DEFAULT_ROOT = Path(os.environ.get("EVIDENCE_QA_CORPUS_ROOT", Path(__file__).resolve().parents[3] / "shared"))

MAX_PAGES = 3  # a phrase on more pages than this is not page-informative
MIN_WORDS, MAX_WORDS = 3, 8
MIN_ANSWERABLE, MIN_UNANSWERABLE = 60, 12
MAX_ANSWER_WORDS = 6
KINDS = {"fact", "number", "list", "why", "how", "who", "compare", "unanswerable"}


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


_cache: dict[Path, list[str]] = {}


def pages_of(path: Path) -> list[str]:
    """Normalised text of each physical page (index 0 = page 1)."""
    if path not in _cache:
        if path.suffix.lower() == ".pdf":
            logging.getLogger("pypdf").setLevel(logging.ERROR)
            from pypdf import PdfReader

            reader = PdfReader(str(path))
            _cache[path] = [norm(p.extract_text() or "") for p in reader.pages]
        else:
            _cache[path] = [norm(path.read_text(encoding="utf-8"))]
    return _cache[path]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    ap.add_argument("--min-answerable", type=int, default=None)
    ap.add_argument("--min-unanswerable", type=int, default=None)
    args = ap.parse_args(argv)
    is_default = args.questions.resolve() == DEFAULT_QUESTIONS.resolve()
    min_answerable = args.min_answerable if args.min_answerable is not None else (MIN_ANSWERABLE if is_default else 0)
    min_unanswerable = args.min_unanswerable if args.min_unanswerable is not None else (MIN_UNANSWERABLE if is_default else 0)

    errors: list[str] = []
    warnings: list[str] = []
    per_doc: collections.Counter[str] = collections.Counter()
    ids: set[str] = set()
    answerable = unanswerable = 0

    conversations = False
    items: list[tuple[str, dict]] = []
    lines = args.questions.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {lineno}: invalid JSON ({exc})")
            continue
        qid = q.get("id")
        if not qid or qid in ids:
            errors.append(f"line {lineno}: missing or duplicate id {qid!r}")
        ids.add(qid)
        if "turns" in q:
            conversations = True
            turns = q["turns"]
            if not isinstance(turns, list) or len(turns) < 2:
                errors.append(f"{qid}: a conversation needs a list of at least two turns")
                continue
            items.extend((f"{qid} turn {n}", turn) for n, turn in enumerate(turns, 1))
        else:
            items.append((str(qid), q))

    for qid, q in items:
        if not str(q.get("question", "")).strip():
            errors.append(f"{qid}: empty question")
        kind = q.get("kind")
        if kind is not None and kind not in KINDS:
            errors.append(f"{qid}: unknown kind {kind!r}")
        gold = q.get("gold")
        if not isinstance(gold, list):
            errors.append(f"{qid}: gold must be a list")
            continue
        answers = q.get("answer", [])
        if not isinstance(answers, list):
            errors.append(f"{qid}: answer must be a list")
            answers = []
        if (kind == "unanswerable") != (not gold) and kind is not None:
            errors.append(f"{qid}: kind {kind!r} does not match {'empty' if not gold else 'non-empty'} gold")
        if not gold:
            unanswerable += 1
            if answers:
                errors.append(f"{qid}: an unanswerable question has answer phrases {answers}")
            continue
        answerable += 1
        if "answer" in q and not answers:
            errors.append(f"{qid}: empty answer list for an answerable question")
        docs_here = set()
        gold_texts: list[str] = []  # normalised texts of every gold page, for the answer check
        for entry in gold:
            doc, pages, phrase = entry.get("doc"), entry.get("pages"), entry.get("contains")
            any_page = pages == [] and str(doc).lower().endswith(".txt")
            if not doc or not (pages or any_page) or not isinstance(pages, list) or not phrase:
                errors.append(f"{qid}: incomplete gold entry {entry}")
                continue
            docs_here.add(doc)
            n_words = len(phrase.split())
            if not MIN_WORDS <= n_words <= MAX_WORDS:
                errors.append(f"{qid}: phrase has {n_words} words (want {MIN_WORDS}-{MAX_WORDS}): {phrase!r}")
            if any(ch in phrase for ch in "\u2018\u2019\u201c\u201d\u2013\u2014"):
                warnings.append(f"{qid}: phrase contains curly quote/dash: {phrase!r}")
            path = args.root / doc
            if not path.is_file():
                errors.append(f"{qid}: document not found: {path}")
                continue
            texts = pages_of(path)
            needle = norm(phrase)
            if any_page:
                pages = list(range(1, len(texts) + 1))
                if not any(needle in t for t in texts):
                    errors.append(f"{qid}: {phrase!r} not in {doc}")
                gold_texts.extend(texts)
                docs_here.add(doc)
                continue
            gold_texts.extend(texts[p - 1] for p in pages if isinstance(p, int) and 1 <= p <= len(texts))
            for p in pages:
                if not isinstance(p, int) or not 1 <= p <= len(texts):
                    errors.append(f"{qid}: page {p} out of range for {doc} ({len(texts)} pages)")
                elif needle not in texts[p - 1]:
                    found = [i + 1 for i, t in enumerate(texts) if needle in t]
                    errors.append(f"{qid}: {phrase!r} not on {doc} p{p} (found on {found or 'no page'})")
            hits = [i + 1 for i, t in enumerate(texts) if needle in t]
            if len(hits) > MAX_PAGES:
                errors.append(f"{qid}: {phrase!r} occurs on {len(hits)} pages of {doc} {hits} - not informative")
            missing = sorted(set(hits) - set(pages))
            if missing and path.suffix.lower() == ".pdf":
                warnings.append(f"{qid}: {phrase!r} also on {doc} pages {missing} (not listed as gold)")
        for doc in docs_here:
            per_doc[doc] += 1
        for answer in answers:
            n_words = len(str(answer).split())
            if not 1 <= n_words <= MAX_ANSWER_WORDS:
                errors.append(f"{qid}: answer has {n_words} words (want 1-{MAX_ANSWER_WORDS}): {answer!r}")
            if gold_texts and not any(norm(str(answer)) in t for t in gold_texts):
                errors.append(f"{qid}: answer {answer!r} is on none of its gold pages")

    # every corpus document and every seed should be covered by a question set
    for sub, pattern in () if conversations else (("corpus", "*.pdf"), ("seeds", "*.txt")):
        for path in sorted((args.root / sub).glob(pattern)):
            rel = f"{sub}/{path.name}"
            if per_doc[rel] == 0:
                errors.append(f"no question uses {rel}")

    what = "turns" if conversations else "questions"
    print(f"{answerable} answerable, {unanswerable} unanswerable, {answerable + unanswerable} {what} in total")
    kinds = collections.Counter(q.get("kind") for _, q in items if q.get("kind"))
    if kinds:
        print("By kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print()
    print("Questions per document:")
    for doc, n in sorted(per_doc.items()):
        print(f"  {n:3d}  {doc}")
    if answerable < min_answerable:
        errors.append(f"only {answerable} answerable questions (want >= {min_answerable})")
    if unanswerable < min_unanswerable:
        errors.append(f"only {unanswerable} unanswerable questions (want >= {min_unanswerable})")

    if warnings:
        print("\nWarnings:")
        for w in warnings:
            print("  " + w)
    if errors:
        print("\nFAILURES:")
        for e in errors:
            print("  " + e)
        return 1
    print("\nAll checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
