"""The site's structure: the README is a front page, every page is in the nav, every include resolves,
the generated benchmark tables carry their header, the decisions keep their shape, NAB data is shipped."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BENCH = ROOT / "bench"
SNIPPET = re.compile(r'^\s*-{1,}8<-{1,}\s+"([^"]+)"\s*$', re.M)


class _Loader(yaml.SafeLoader):
    """mkdocs.yml with its ``!!python/name:`` tags read as plain strings."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def _pages() -> list[Path]:
    skip = ("benchmarks", "hooks")
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] not in skip)


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    assert "make demo" in text and "make test" in text  # CI greps for both
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / target).is_file(), f"README links to a missing page: {target}"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists(config):
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav))
    for page in nav:
        assert (DOCS / page).is_file(), f"nav names a missing page: {page}"
    assert sorted(str(p.relative_to(DOCS)) for p in _pages()) == sorted(nav)


def test_every_include_resolves_and_every_generated_table_is_included():
    included = set()
    for page in _pages():
        for target in SNIPPET.findall(page.read_text(encoding="utf-8")):
            assert (DOCS / target).is_file(), f"{page.relative_to(ROOT)} includes a missing file: {target}"
            included.add(target)
    generated = {str(p.relative_to(DOCS)) for p in (DOCS / "benchmarks").glob("*.md")}
    assert generated, "no generated benchmark table"
    assert generated <= included, f"generated but not included: {sorted(generated - included)}"


def test_generated_tables_name_the_command_date_and_machine():
    sys.path.insert(0, str(BENCH))
    from report import MARKER

    header = re.compile(
        r"^Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC with `\.venv/bin/python bench/(\w+)\.py[^`]*--markdown[^`]*` "
        r"\(nproc \d+, [^)]+\)\.$"
    )
    for path in sorted((DOCS / "benchmarks").glob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == MARKER, path.name
        match = header.match(lines[2])
        assert match and match[1] == path.stem, f"{path.name}: {lines[2]!r}"


def test_the_bench_scripts_of_the_docs_can_write_their_tables():
    for name in ("scenarios", "features", "producer", "producer_faults", "thresholds", "residual"):
        text = (BENCH / f"{name}.py").read_text(encoding="utf-8")
        assert '"--markdown"' in text and f'write_markdown("{name}"' in text, name


def test_write_markdown_puts_the_header_before_the_text(tmp_path):
    sys.path.insert(0, str(BENCH))
    import report

    path = report.write_markdown("demo", "| a |\n|---|\n| 1 |\n", argv=["--markdown"], seconds=2.4, directory=tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert path == tmp_path / "demo.md"
    assert lines[0] == report.MARKER and lines[1] == ""
    assert lines[2].startswith("Measured ") and "`.venv/bin/python bench/demo.py --markdown`" in lines[2]
    assert f"nproc {report.nproc()}" in lines[2] and lines[2].endswith(", 2 s).")
    assert lines[4:] == ["| a |", "|---|", "| 1 |"]
    with pytest.raises(ValueError):
        report.write_markdown("../x", "text", directory=tmp_path)


def test_decisions_have_context_decision_consequences_in_10_to_30_lines(config):
    index = (DOCS / "decisions" / "index.md").read_text(encoding="utf-8")
    records = sorted((DOCS / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md"))
    assert len(records) >= 10
    for number, path in enumerate(records, 1):
        text = path.read_text(encoding="utf-8")
        assert path.name.startswith(f"{number:04d}-"), f"numbers run on without gaps: {path.name}"
        assert text.startswith(f"# {number}. ")
        headings = re.findall(r"^## (.+)$", text, re.M)
        assert headings == ["Context", "Decision", "Consequences"], path.name
        assert 10 <= len(text.splitlines()) <= 30, f"{path.name}: {len(text.splitlines())} lines"
        assert f"]({path.name})" in index, f"{path.name} is not listed in decisions/index.md"


def test_api_pages_name_modules_that_exist():
    names = set()
    for page in (DOCS / "api").glob("*.md"):
        names |= set(re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.M))
    assert "clickstream_anomaly.baseline" in names and "clickstream_anomaly.aws.training.spec" in names
    for name in sorted(names):
        assert importlib.util.find_spec(name) is not None, name


def test_nab_data_ships_with_its_source_and_licence():
    nab = ROOT / "data" / "nab"
    csvs = sorted((nab / "data").rglob("*.csv"))
    assert len(csvs) == 36
    assert {p.parent.name for p in csvs} == {
        "artificialWithAnomaly",
        "realAWSCloudwatch",
        "realAdExchange",
        "realTraffic",
    }
    assert (nab / "labels" / "combined_windows.json").is_file() and (nab / "labels" / "combined_labels.json").is_file()
    licence = (nab / "LICENSE").read_text(encoding="utf-8")
    assert "Copyright 2014-2024 Numenta Inc." in licence and "Permission is hereby granted, free of charge" in licence
    assert "Numenta" in (nab / "SOURCE.md").read_text(encoding="utf-8")
