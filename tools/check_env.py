#!/usr/bin/env python3
"""Check that the environment is the pinned one: every declared dependency pinned, every pin installed.

CI runs this before the tests, on a fresh install. It is not a unit test: a local
`pip install` of something extra or newer is a change to one machine, not a bug.
Exit status 0 when all is in step, 1 with the differences listed otherwise.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> tuple[dict[str, str], list[str]]:
    """Exact pins of a constraints file, and the lines that are not exact pins."""
    found: dict[str, str] = {}
    bad: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
        else:
            bad.append(f"constraints.txt: {line!r} is not an exact name==version pin")
    return found, bad


def problems(root: Path = ROOT) -> list[str]:
    """Everything that differs between pyproject.toml, constraints.txt and the installed packages."""
    pinned, out = pins((root / "constraints.txt").read_text(encoding="utf-8"))
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    for requirement in declared:
        name = canonical(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        if name not in pinned:
            out.append(f"{name} is declared in pyproject.toml but not pinned in constraints.txt (run make lock)")
    for name, version in pinned.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(f"{name} is pinned but not installed (run make install)")
            continue
        if installed.split("+")[0] != version.split("+")[0]:
            out.append(f"{name} {installed} is installed but constraints.txt pins {version}")
    return out


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    print("environment matches constraints.txt" if not found else f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
