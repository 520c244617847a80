"""Settings: the environment first, then the command line, read in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.settings import DEFAULT_GOVUK_API, Settings


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert (s.corpus, s.index, s.model, s.govuk_api) == (Path("corpus"), Path("index"), "", DEFAULT_GOVUK_API)


def test_environment_then_command_line() -> None:
    env = {"QA_CORPUS_DIR": "/data/reports", "QA_INDEX_DIR": "/data/idx", "QA_MODEL": " my-model ", "QA_GOVUK_API": ""}
    s = Settings.from_env(env)
    assert s.corpus == Path("/data/reports") and s.index == Path("/data/idx") and s.model == "my-model"
    assert s.govuk_api == DEFAULT_GOVUK_API  # an empty variable is as good as unset
    t = s.override(index="other", model=None, corpus="")
    assert t.index == Path("other") and t.model == "my-model" and t.corpus == Path("/data/reports")


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(TypeError, match="no_such"):
        Settings().override(no_such="x")  # type: ignore[call-arg]
