"""Check that ``requirements-dev.lock`` pins every package ``requirements*.txt`` pin, at the same version.

``make install`` (and so ``make test``) installs from the lock file only, so a pin changed in a
requirements file without ``make lock`` would be silently ignored; this check (run by the Makefile before
installing, and by ``make lint``) fails instead and says what to run. Standard library only: it runs
before anything is installed.

    python3 scripts/check_lock.py [requirements-dev.txt] [requirements-dev.lock]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#\\]+)")


def _normal(name: str) -> str:
    """PEP 503's normal form of a package name (``Foo_Bar`` and ``foo-bar`` are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``{name: version}`` of the ``name==version`` lines of a requirements file and the files it includes
    with ``-r``."""
    out: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith(("-r ", "--requirement ")):
            out.update(pins(path.parent / line.split(maxsplit=1)[1]))
            continue
        match = _PIN.match(line)
        if match:
            out[_normal(match[1])] = match[3]
    return out


def problems(requirements: Path, lock: Path) -> list[str]:
    """One line per pin of ``requirements`` that ``lock`` lacks or pins at another version."""
    if not lock.exists():
        return [f"{lock.name} is missing"]
    locked = pins(lock)
    out = []
    for name, version in sorted(pins(requirements).items()):
        if name not in locked:
            out.append(f"{name}=={version} is not in {lock.name}")
        elif locked[name] != version:
            out.append(f"{name}=={version}, but {lock.name} has {locked[name]}")
    return out


def main(argv: list[str]) -> int:
    requirements = Path(argv[0]) if argv else ROOT / "requirements-dev.txt"
    lock = Path(argv[1]) if len(argv) > 1 else ROOT / "requirements-dev.lock"
    found = problems(requirements, lock)
    for line in found:
        print(f"{lock.name}: {line}", file=sys.stderr)
    if found:
        print(f"{lock.name} is out of date with {requirements.name}: run `make lock`", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
