"""Hybrid retrieval: dense (FAISS) and lexical (SQLite FTS5 BM25), fused, then diversified.

The functions here are pure: they take the hits the store returned and decide
the ranking, how far a passage reaches on its page and whether the passages
answer the question at all. ``fts_query`` makes any user text safe to hand to FTS5.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .records import Chunk

# Common English words that carry no topic; FTS5 matches them everywhere.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves tell show give find
    please know want need get got say said does did many much also use used using way ways
    """.split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class FusionSettings:
    """How dense and lexical scores combine; chosen by measurement (see docs/benchmarks.md)."""

    method: str = "weighted"  # "weighted" or "rrf"
    dense_weight: float = 0.6
    rrf_k: int = 60
    candidates: int = 60
    per_page: int = 1
    max_overlap: float = 0.3


@dataclass(frozen=True)
class Candidate:
    """A chunk with its scores, before and after fusion."""

    chunk_id: int
    dense: float
    lexical: float
    score: float = 0.0


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of a question, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the question's content words, each quoted.

    Quoting every term as a string means operators (AND, NEAR, -, *, ") in user
    text are read as words, so no input can be a syntax error. None when only
    stop words remain.
    """
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms[:32])


def fuse(dense: dict[int, float], lexical: dict[int, float], settings: FusionSettings) -> list[Candidate]:
    """Combine two score maps into one ranking (best first).

    ``dense`` holds cosines for every candidate; ``lexical`` BM25 scores for those
    FTS5 matched. Weighted fusion scales BM25 by the best BM25 of this query, so a
    strong lexical match and a strong dense match count alike.
    """
    ids = set(dense) | set(lexical)
    if not ids:
        return []
    if settings.method == "rrf":
        dense_rank = {cid: r for r, cid in enumerate(sorted(dense, key=lambda c: -dense[c]))}
        lex_rank = {cid: r for r, cid in enumerate(sorted(lexical, key=lambda c: -lexical[c]))}
        w = settings.dense_weight
        scored = []
        for cid in ids:
            value = 0.0
            if cid in dense_rank:
                value += w / (settings.rrf_k + dense_rank[cid] + 1)
            if cid in lex_rank:
                value += (1 - w) / (settings.rrf_k + lex_rank[cid] + 1)
            scored.append(Candidate(cid, dense.get(cid, 0.0), lexical.get(cid, 0.0), value))
    else:
        top_lex = max(lexical.values(), default=0.0)
        w = settings.dense_weight
        scored = [
            Candidate(
                cid, dense.get(cid, 0.0), lexical.get(cid, 0.0),
                w * dense.get(cid, 0.0) + (1 - w) * (lexical.get(cid, 0.0) / top_lex if top_lex > 0 else 0.0),
            )
            for cid in ids
        ]
    scored.sort(key=lambda c: (-c.score, c.chunk_id))
    return scored


def _overlap(a: Chunk, b: Chunk) -> float:
    """Share of the shorter chunk covered by the other (same page only)."""
    if a.doc_id != b.doc_id or a.page != b.page:
        return 0.0
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / max(1, min(a.end - a.start, b.end - b.start))


def diversify(ranked: Sequence[Candidate], chunks: dict[int, Chunk], k: int, settings: FusionSettings) -> list[Candidate]:
    """Top ``k`` candidates with at most ``per_page`` per page and no heavy overlaps.

    When the limits leave fewer than ``k``, the best of the rest fill the list.
    """
    picked: list[Candidate] = []
    rest: list[Candidate] = []
    per_page: dict[tuple[str, int], int] = {}
    for cand in ranked:
        chunk = chunks.get(cand.chunk_id)
        if chunk is None:
            continue
        key = (chunk.doc_id, chunk.page)
        if len(picked) >= k:
            break
        if per_page.get(key, 0) >= settings.per_page or any(
            _overlap(chunk, chunks[p.chunk_id]) > settings.max_overlap for p in picked
        ):
            rest.append(cand)
            continue
        picked.append(cand)
        per_page[key] = per_page.get(key, 0) + 1
    for cand in rest:
        if len(picked) >= k:
            break
        if not any(_overlap(chunks[cand.chunk_id], chunks[p.chunk_id]) > 0.8 for p in picked):
            picked.append(cand)
    return picked


def widen(chunk_id: int, chunk: Chunk, neighbours: Mapping[int, Chunk], scores: Mapping[int, float],
          limit: int, page_text: str | None = None) -> tuple[int, int]:
    """The page span of a passage: the chunk grown over its neighbours on the same page.

    Neighbours are added one at a time from either side, the better-scored side
    first, while the span stays within ``limit`` characters. Chunks are small
    so that vectors stay sharp; the reader needs the sentences around them.
    With ``page_text``, the budget whole chunks leave is then filled (see
    ``fill``), starting on the side of the better-scored chunk left out.
    """
    start, end = chunk.start, chunk.end
    lo = hi = chunk_id

    def same_page(i: int) -> Chunk | None:
        other = neighbours.get(i)
        if other is None or other.doc_id != chunk.doc_id or other.page != chunk.page:
            return None
        return other

    while True:
        options = []
        for i in (lo - 1, hi + 1):
            other = same_page(i)
            if other is not None and max(end, other.end) - min(start, other.start) <= limit:
                options.append((scores.get(i, float("-inf")), -i, i, other))
        if not options:
            break
        _, _, i, other = max(options)
        start, end = min(start, other.start), max(end, other.end)
        lo, hi = min(lo, i), max(hi, i)
    if page_text is None:
        return start, end
    before = scores.get(lo - 1, 0.0) if same_page(lo - 1) else None
    after = scores.get(hi + 1, 0.0) if same_page(hi + 1) else None
    before_first = after is None or (before is not None and before >= after)
    return fill(page_text, start, end, limit, before_first)


_BREAK = re.compile(r"(?<=[.!?:;])\s+|\n")


def fill(text: str, start: int, end: int, limit: int, before_first: bool) -> tuple[int, int]:
    """Spend what is left of a passage's ``limit`` on the page text around ``start:end``.

    Whole neighbouring chunks can leave hundreds of characters of the budget
    unused when the next one does not fit; the reader still wants the text just
    before and after. The span grows on the preferred side first, then the
    other, and only to a line or sentence boundary, so it never starts or ends
    mid-sentence when a boundary is in reach.
    """
    spare = limit - (end - start)
    for side in ((0, 1) if before_first else (1, 0)):
        if spare <= 0:
            break
        if side == 0 and start > 0:
            lo = max(0, start - spare)
            cut = next((m.end() for m in _BREAK.finditer(text, lo, start)), None) if lo > 0 else 0
            if cut is not None and cut < start:
                spare -= start - cut
                start = cut
        elif side == 1 and end < len(text):
            hi = min(len(text), end + spare)
            cuts = [m.start() for m in _BREAK.finditer(text, end, hi)] if hi < len(text) else [hi]
            if cuts and cuts[-1] > end:
                spare -= cuts[-1] - end
                end = cuts[-1]
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --- is the question answered by the corpus? ------------------------------------------------

@dataclass(frozen=True)
class FoundSettings:
    """When retrieved passages count as an answer (chosen on the development questions).

    * ``min_dense``: the best passage's cosine must reach this (off-topic questions sit far below).
    * ``key_passages``: the question's names and numbers must all appear together in one of the
      first this-many passages (passage text, document title or file name); a question about
      another place, year or body is not answered by passages about ours.
    * ``absent_share`` / ``absent_terms``: a question whose content words are mostly missing from
      the whole corpus (at least this share and this many) is about something else.
    """

    min_dense: float = 0.30
    key_passages: int = 5
    absent_share: float = 1 / 3
    absent_terms: int = 2


_TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.?!;:]\s+")
_SUFFIXES = (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", ""))


def stem(word: str) -> str:
    """A light suffix-stripping stem, enough to match 'plans' with 'plan' or 'inspected' with 'inspect'."""
    word = word.lower()
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower())}


def key_terms(question: str) -> list[str]:
    """Names and numbers of a question: capitalised words not opening a sentence, and numbers.

    "What did Ofsted find in Leeds in 2018?" gives ofsted, leeds, 2018.
    """
    keys: dict[str, None] = {}
    for sentence in _SENTENCE_END.split(question):
        for i, token in enumerate(_TOKEN.findall(sentence)):
            word = re.sub(r"['\u2019]s$", "", token)
            for part in _WORD.findall(word):
                if part.isdigit() or (i > 0 and part[:1].isupper() and part.lower() not in STOPWORDS):
                    keys.setdefault(part.lower(), None)
    return list(keys)


def is_answered(
    question: str,
    passages: Sequence[tuple[str, str]],
    best_dense: float,
    in_corpus: Callable[[str], bool],
    settings: FoundSettings = FoundSettings(),
) -> bool:
    """Whether passages (each: its text, its document's title and file name) answer the question.

    ``in_corpus(term)`` says whether a word occurs anywhere in the index; it is
    only asked about words the passages lack.
    """
    if not passages or best_dense < settings.min_dense:
        return False
    keys = [stem(k) for k in key_terms(question)]
    seen: set[str] = set()
    keys_together = not keys
    for i, (text, label) in enumerate(passages):
        words = stems(text) | stems(label)
        seen |= words
        if i < settings.key_passages and all(k in words for k in keys):
            keys_together = True
    if not keys_together:
        return False
    terms = query_terms(question)
    absent = [t for t in terms if stem(t) not in seen and not in_corpus(t)]
    if terms and len(absent) >= settings.absent_terms and len(absent) / len(terms) >= settings.absent_share:
        return False
    return True


_FOLLOW_UP = re.compile(
    r"^(and|but|what about|how about|what of|also|then|so|same|and what|or)\b|\b(it|they|them|their|those|these|that one|this one|there)\b",
    re.I,
)


def contextualise(question: str, history: Sequence[str]) -> str:
    """The text to search for a question in a conversation.

    A question that leans on the one before ("what about for teenagers?") is
    searched together with the previous question; a self-contained one alone.
    """
    question = question.strip()
    if not history:
        return question
    previous = history[-1].strip()
    if not previous:
        return question
    short = len(query_terms(question)) <= 3
    if short or _FOLLOW_UP.search(question):
        return f"{previous} {question}"
    return question
