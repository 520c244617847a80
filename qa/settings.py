"""Where the corpus and the index live, which model embeds, which GOV.UK mirror to fetch from.

Read once: the environment first (``QA_CORPUS_DIR``, ``QA_INDEX_DIR``, ``QA_MODEL``,
``QA_GOVUK_API``), then what the command line gives. The CLI and the app build one
``Settings`` and hand it down; no other module reads these variables. How each stage
cuts, searches or answers is that stage's own settings object, recorded in the index
where it matters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_GOVUK_API = "https://www.gov.uk/api/content"

ENVIRONMENT = {
    "corpus": "QA_CORPUS_DIR",
    "index": "QA_INDEX_DIR",
    "model": "QA_MODEL",
    "govuk_api": "QA_GOVUK_API",
}


@dataclass(frozen=True)
class Settings:
    """The settings every command shares."""

    corpus: Path = Path("corpus")
    index: Path = Path("index")
    model: str = ""  # empty: the bundled all-MiniLM-L6-v2 to build, the index's own model to ask
    govuk_api: str = DEFAULT_GOVUK_API

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by the variables in ``environ`` (the process environment by default)."""
        environ = os.environ if environ is None else environ
        given = {name: environ[var].strip() for name, var in ENVIRONMENT.items() if environ.get(var, "").strip()}
        return cls().override(**given)

    def override(self, *, corpus: str | os.PathLike[str] | None = None, index: str | os.PathLike[str] | None = None,
                 model: str | None = None, govuk_api: str | None = None) -> Settings:
        """A copy with the values that are given (None and empty strings leave a setting as it is)."""
        changes: dict[str, Any] = {}
        if corpus:
            changes["corpus"] = Path(corpus)
        if index:
            changes["index"] = Path(index)
        if model and model.strip():
            changes["model"] = model.strip()
        if govuk_api and govuk_api.strip():
            changes["govuk_api"] = govuk_api.strip()
        return replace(self, **changes)
