"""scripts/check_lock.py: the lock file pins what the requirements files pin (and the check says so)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_lock", ROOT / "scripts" / "check_lock.py")
assert _spec is not None and _spec.loader is not None
check_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_lock)


def test_the_repository_lock_matches_the_requirements():
    assert check_lock.problems(ROOT / "requirements-dev.txt", ROOT / "requirements-dev.lock") == []


def test_pins_follow_includes_and_normalise_names(tmp_path):
    (tmp_path / "base.txt").write_text("# runtime\nNumPy==2.0.1\naws_cdk.lib==2.1.0  # cdk\n")
    (tmp_path / "dev.txt").write_text("-r base.txt\nmoto[server]==5.0\nruff>=0.1\n")
    assert check_lock.pins(tmp_path / "dev.txt") == {"numpy": "2.0.1", "aws-cdk-lib": "2.1.0", "moto": "5.0"}


def test_a_missing_or_different_pin_is_named(tmp_path):
    (tmp_path / "dev.txt").write_text("numpy==2.0.1\nmoto[server]==5.0\n")
    (tmp_path / "dev.lock").write_text("numpy==2.0.0 \\\n    --hash=sha256:00\n")
    assert check_lock.problems(tmp_path / "dev.txt", tmp_path / "dev.lock") == [
        "moto==5.0 is not in dev.lock",
        "numpy==2.0.1, but dev.lock has 2.0.0",
    ]
    assert check_lock.main([str(tmp_path / "dev.txt"), str(tmp_path / "dev.lock")]) == 1
    assert check_lock.problems(tmp_path / "dev.txt", tmp_path / "nothing.lock") == ["nothing.lock is missing"]
