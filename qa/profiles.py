"""The words that only fit one collection of reports, read from a profile file instead of held in code.

A profile is a small JSON file: the users' words for the reports' words
("kids": children), the publishing boilerplate never quoted as an answer (a
licence line, a sample's disclaimer), an inspectorate's grade scale, the words
that may open a footnote after its number, the words that number a series
("wave 2"), the bodies a "which ..." question asks for by name and the
inspectorates whose "result" is a grade.
``qa/data/profiles/default.json`` is a general default; the profile of this
project's reports (``childrens-social-care``) ships beside it and is the one
used unless ``QA_PROFILE`` names another (a shipped name or a file's path).
The profile's sha256 is recorded in an index's manifest (``profile``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import QAError

__all__ = ["DEFAULT_PROFILE", "Profile", "load_profile", "profile_sha256"]

DEFAULT_PROFILE = "childrens-social-care"
PROFILE_FORMAT = 1


@dataclass(frozen=True)
class Profile:
    """One profile's word lists, and the patterns made from them once."""

    name: str
    plain_words: dict[str, str]
    boilerplate: re.Pattern[str]
    grades: tuple[str, ...]
    footnote_openings: re.Pattern[str]
    series: tuple[str, ...]
    bodies: tuple[str, ...]
    inspectorates: tuple[str, ...]
    sha256: str

    @property
    def grade_words(self) -> str:
        """The grade scale as a regular-expression alternation ('' when the profile has none)."""
        return "|".join(re.escape(g) for g in sorted(self.grades, key=len, reverse=True))


def _text(name: str) -> tuple[str, str]:
    """A profile's text and where it came from: a shipped name, or a file's path."""
    if name.endswith(".json") or os.sep in name:
        path = Path(name)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise QAError(f"cannot read the profile {path}: {exc.strerror or exc}; set QA_PROFILE to a readable "
                          f"profile file or a shipped profile name") from exc
    try:
        return resources.files("qa").joinpath("data", "profiles", f"{name}.json").read_text(encoding="utf-8"), \
            f"qa/data/profiles/{name}.json"
    except (OSError, ValueError) as exc:
        raise QAError(f"no shipped profile named {name!r}; set QA_PROFILE to 'default', "
                      f"{DEFAULT_PROFILE!r} or a profile file's path") from exc


def parse_profile(text: str, where: str) -> Profile:
    """A profile from its JSON text; anything malformed names the file and the fix."""
    try:
        data = json.loads(text)
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this version reads {PROFILE_FORMAT}")
        plain = {str(k): str(v) for k, v in data["plain_words"].items()}
        boiler = [str(p) for p in data["boilerplate"]]
        openings = [str(w) for w in data["footnote_openings"]]
        return Profile(
            name=where, plain_words=plain,
            boilerplate=re.compile("|".join(boiler) or r"(?!)", re.I),
            grades=tuple(str(g) for g in data["grades"]),
            footnote_openings=re.compile(rf"^\s*\d{{1,3}} (?=(?:{'|'.join(openings) or '(?!)'})\b)"),
            series=tuple(str(s).lower() for s in data["series"]),
            bodies=tuple(str(b) for b in data["bodies"]),
            inspectorates=tuple(str(i) for i in data["inspectorates"]),
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
    except (ValueError, KeyError, TypeError, AttributeError, re.error) as exc:
        raise QAError(f"{where} is not a profile this version can read ({exc}); compare it with "
                      "qa/data/profiles/default.json") from exc


@lru_cache(maxsize=4)
def _load(name: str) -> Profile:
    text, where = _text(name)
    return parse_profile(text, where)


def load_profile(name: str | None = None) -> Profile:
    """The profile in force: ``name``, else ``QA_PROFILE``, else this project's reports' profile."""
    return _load(name or os.environ.get("QA_PROFILE") or DEFAULT_PROFILE)


def profile_sha256(name: str | None = None) -> str:
    """The sha256 of the profile in force, as recorded in an index's manifest."""
    return load_profile(name).sha256
