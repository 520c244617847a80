#!/usr/bin/env python3
"""Verify the development question set in shared_questions.jsonl.

For every gold entry it extracts the text of each listed page (pypdf for PDFs,
the whole file as page 1 for .txt seeds), normalises it (NFKC, whitespace
collapsed, case folded) and checks that the ``contains`` phrase is on that page.
It also checks that the phrase is "informative", i.e. it does not occur on more
than MAX_PAGES pages of the same document, and prints the number of questions
per document.

Usage:
    python tests/data/check_questions.py [--root /work/shared] [--questions FILE]

``--root`` is the folder that holds ``corpus/`` and ``seeds/`` (the ``doc``
paths in the question file are relative to it). Exit status is 0 when every
check passes, 1 otherwise.
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
DEFAULT_ROOT = Path(os.environ.get("EVIDENCE_QA_CORPUS_ROOT", "/work/shared"))

MAX_PAGES = 3          # a phrase on more pages than this is not page-informative
MIN_WORDS, MAX_WORDS = 3, 8
MIN_ANSWERABLE, MIN_UNANSWERABLE = 60, 12


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    args = ap.parse_args()

    errors: list[str] = []
    warnings: list[str] = []
    per_doc: collections.Counter[str] = collections.Counter()
    ids: set[str] = set()
    answerable = unanswerable = 0

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
        if not str(q.get("question", "")).strip():
            errors.append(f"{qid}: empty question")
        gold = q.get("gold")
        if not isinstance(gold, list):
            errors.append(f"{qid}: gold must be a list")
            continue
        if not gold:
            unanswerable += 1
            continue
        answerable += 1
        docs_here = set()
        for entry in gold:
            doc, pages, phrase = entry.get("doc"), entry.get("pages"), entry.get("contains")
            if not doc or not pages or not phrase:
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

    # every corpus document and every seed should be covered
    for sub, pattern in (("corpus", "*.pdf"), ("seeds", "*.txt")):
        for path in sorted((args.root / sub).glob(pattern)):
            rel = f"{sub}/{path.name}"
            if per_doc[rel] == 0:
                errors.append(f"no question uses {rel}")

    print(f"{answerable} answerable, {unanswerable} unanswerable, {answerable + unanswerable} total\n")
    print("Questions per document:")
    for doc, n in sorted(per_doc.items()):
        print(f"  {n:3d}  {doc}")
    if answerable < MIN_ANSWERABLE:
        errors.append(f"only {answerable} answerable questions (want >= {MIN_ANSWERABLE})")
    if unanswerable < MIN_UNANSWERABLE:
        errors.append(f"only {unanswerable} unanswerable questions (want >= {MIN_UNANSWERABLE})")

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
