"""Follow-up questions in a conversation: merged with the previous turn only when they lean on it.

"and the second stage?" or "how many of them lived outside the county?" make
sense only after the question before; "What is Family Safeguarding?" or
"How do I reset my router password?" stand alone, however short, and must be
searched alone. A follow-up is never merged onto a turn that was not answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import WORD, query_terms

# Opening words of an elliptical question: it continues the one before.
_ELLIPSIS = re.compile(
    r"^\s*(?:and|but|or|also|so|then|plus|same|what about|how about|what of|and what|and how|what else|"
    r"anything else|any others?|(?:for|in|about|with|during|among|at|on|after|before|from|by|over|under)\b"
    r"(?!\s+(?:the|a|an)\s+\w+\s+\w+\s+\w+))\b",
    re.I,
)
# Pronouns that point back; first and second person ("my router") do not.
_BACK = {"it", "its", "they", "them", "their", "theirs", "he", "she", "him", "his", "her", "hers"}
_DEMONSTRATIVE = {"this", "that", "these", "those", "there", "such"}
_AUX = {"is", "are", "was", "were", "would", "will", "does", "do", "did", "can", "could", "should", "has", "have",
        "had", "how", "why", "when", "where", "what", "who", "which", "and", "but", "so", "about", "of", "in", "for"}
_EXISTENTIAL = {"is", "are", "was", "were", "be", "been", "will", "would", "has", "have", "had", "may", "might"}
# Words that name a group, so "their" has a referent in the question itself ("social workers ... their jobs").
_GROUP = {"children", "people", "staff", "police", "families", "council", "councils", "authority", "authorities",
          "team", "teams", "carers", "parents", "workers", "leavers", "services", "projects", "agencies"}


@dataclass(frozen=True)
class Turn:
    """A previous turn: what was searched for it and whether it was answered."""

    question: str
    found: bool = True


def leans_on_previous(question: str) -> bool:
    """Whether a question only makes sense after the one before it."""
    text = question.strip()
    if not text:
        return False
    if _ELLIPSIS.match(text):
        return True
    tokens = [w.lower() for w in WORD.findall(text)]
    for i, word in enumerate(tokens):
        before = tokens[:i]
        if word in _BACK:
            if word in {"they", "them", "their", "theirs"}:
                if any(w in _GROUP or (w.endswith("s") and len(w) > 3 and w not in _AUX) for w in
                       (t for t in before if t in set(query_terms(" ".join(before))))):
                    continue  # "social workers ... their jobs"
            elif query_terms(" ".join(before)) and word in {"its", "his", "her"}:
                continue  # "the council ... its budget"
            elif word == "it" and len(query_terms(" ".join(before))) >= 2:
                continue  # "when workers look for a child's plan, how long does it take": its own subject
            return True
        if word in _DEMONSTRATIVE:
            after = tokens[i + 1] if i + 1 < len(tokens) else ""
            if word in {"these", "those"} and before and before[-1] == "of":
                return True  # "how many of those ...", "which of these ..."
            if word == "there":
                if after in _EXISTENTIAL or (before and before[-1] in _EXISTENTIAL and after):
                    continue  # "is there", "there were"
                return True
            if word == "that" and before and before[-1] not in _AUX:
                continue  # a relative clause: "a family that is poor"
            if all(w in _AUX for w in before) and (not after or after in _EXISTENTIAL or after in {"cover", "mean",
                                                                                                  "apply", "include"}):
                return True  # "would that cover ...", "is this ...", "what does that mean"
            if word in {"this", "that", "these", "those"} and after in {"one", "ones", "figure", "number", "project",
                                                                         "projects", "approach", "model", "scheme"}:
                if not query_terms(" ".join(before)) or all(w in _AUX for w in before):
                    return True
    return False


def contextualise(question: str, history: list[Turn | str] | tuple[Turn | str, ...]) -> tuple[str, bool]:
    """What to search for a question in a conversation, and whether it was merged with the previous turn.

    The previous question is put in front only when the question leans on it
    and the previous turn was answered.
    """
    question = question.strip()
    if not history:
        return question, False
    last = history[-1]
    previous = Turn(last) if isinstance(last, str) else last
    if not previous.question.strip() or not previous.found:
        return question, False
    if leans_on_previous(question):
        return f"{previous.question.strip()} {question}", True
    return question, False
