"""docs/cli.md is generated from the CLI's parser (scripts/generate_cli_docs.py) and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "generate_cli_docs.py"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_cli_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_page_is_up_to_date(generator):
    page = ROOT / "docs" / "cli.md"
    assert page.read_text(encoding="utf-8") == generator.render(), (
        "docs/cli.md is out of date: run python scripts/generate_cli_docs.py"
    )


def test_every_subcommand_has_a_section_with_its_help(generator):
    from clickstream_anomaly.cli import COMMANDS, build_parser

    text = generator.render()
    paths = [path for path, _ in generator.walk(build_parser())]
    assert {p[0] for p in paths if p} == set(COMMANDS)
    assert ("sagemaker", "train") in paths
    for path in paths:
        assert f"`{' '.join(('clickstream-anomaly', *path))}`" in text
    assert "usage: clickstream-anomaly detect" in text and "--timezone" in text


def test_the_page_does_not_depend_on_the_terminal(generator, monkeypatch):
    first = generator.render()
    monkeypatch.setenv("COLUMNS", "40")
    assert generator.render() == first
    assert max(len(line) for line in first.splitlines()) <= generator.WIDTH + 2


def test_check_mode_fails_on_a_stale_page(generator, monkeypatch, tmp_path, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text("# Command line\n", encoding="utf-8")
    monkeypatch.setattr(generator, "PAGE", stale)
    assert generator.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
