"""The dependency set is pinned, and the installed environment matches the pins."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt: {line!r} is not an exact name==version pin"
        pins[_canonical(match.group(1))] = match.group(2)
    return pins


def test_every_declared_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = _pins()
    for requirement in declared:
        name = _canonical(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in constraints.txt (run make lock)"


def test_installed_versions_match_the_pins() -> None:
    mismatched = []
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            mismatched.append(f"{name} not installed")
            continue
        if installed.split("+")[0] != version.split("+")[0]:
            mismatched.append(f"{name} {installed} != {version}")
    assert not mismatched, "environment differs from constraints.txt: " + "; ".join(mismatched)
