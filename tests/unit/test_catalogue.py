"""The guarantee catalogue: validation, coverage scan, Markdown and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.__main__ import main
from conformance.catalogue import (
    CatalogueError,
    coverage_problems,
    load_catalogue,
    render_markdown,
    scan_markers,
)

GOOD = """
- id: PAUSE-01
  operation: pause
  must: pause MUST end PAUSED.
  depth: api
  capability: pause
  source: nova/compute/api.py:API.pause
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guarantees.yaml"
    path.write_text(text)
    return path


def test_shipped_catalogue_is_valid() -> None:
    """The catalogue in the package loads without problems."""
    catalogue = load_catalogue()
    assert catalogue and all(g.must.strip() for g in catalogue.values())


def test_good_entry_loads(tmp_path: Path) -> None:
    """A complete entry loads with its family and anchor."""
    entry = load_catalogue(write(tmp_path, GOOD))["PAUSE-01"]
    assert (entry.family, entry.anchor, entry.capability) == ("PAUSE", "pause-01", "pause")


@pytest.mark.parametrize(("change", "problem"), [
    (("id: PAUSE-01", "id: pause-1"), "id 'pause-1' is not FAMILY-NN"),
    (("depth: api", "depth: deep"), "depth 'deep' is not one of"),
    (("capability: pause", "capability: teleport"), "capability 'teleport' is not in"),
    (("must: pause MUST end PAUSED.", "must: ''"), "must must be a non-empty string"),
    (("  source: nova/compute/api.py:API.pause\n", ""), "missing key 'source'"),
    (("depth: api", "depth: api\n  owner: me"), "unknown key 'owner'"),
])
def test_invalid_entries_are_named(tmp_path: Path, change: tuple[str, str], problem: str) -> None:
    """Each kind of invalid entry is reported with the entry and the problem."""
    with pytest.raises(CatalogueError) as err:
        load_catalogue(write(tmp_path, GOOD.replace(*change)))
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    """Two entries with one id are an error."""
    with pytest.raises(CatalogueError, match="PAUSE-01: duplicate id"):
        load_catalogue(write(tmp_path, GOOD + GOOD))


def test_scan_markers_reads_decorators(tmp_path: Path) -> None:
    """Static scan finds ids in @guarantee(...) and pytest.mark.guarantee(...)."""
    module = tmp_path / "test_x.py"
    module.write_text('import pytest\nfrom conformance import guarantee\n\n'
                      '@guarantee("PAUSE-01", "PAUSE-02")\ndef test_a():\n    pass\n\n'
                      '@pytest.mark.guarantee("PAUSE-03")\ndef test_b():\n    pass\n')
    assert sorted(scan_markers([module])) == ["PAUSE-01", "PAUSE-02", "PAUSE-03"]


def test_coverage_problems(tmp_path: Path) -> None:
    """A guarantee without a test and an unknown id used by a test are both problems."""
    catalogue = load_catalogue(write(tmp_path, GOOD))
    problems = coverage_problems(catalogue, {"PAUSE-09": ["suites/test_x.py:3"]})
    assert problems == ["PAUSE-01: no test declares it with @guarantee",
                        "PAUSE-09: used at suites/test_x.py:3 but not in the catalogue"]


def test_markdown_groups_by_family() -> None:
    """The Markdown doc has a section per family and an entry per guarantee with its source."""
    catalogue = load_catalogue()
    text = render_markdown(catalogue)
    for g in catalogue.values():
        assert f"### {g.id}" in text
        assert f"## {g.family}" in text
    assert "- source: " in text


def test_cli_check_passes_for_repository(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m conformance catalogue --check` passes on the shipped suites."""
    assert main(["catalogue", "--check"]) == 0


def test_cli_check_fails_without_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--check fails (exit 1) and names the guarantees when no test covers them."""
    (tmp_path / "test_none.py").write_text("def test_nothing():\n    pass\n")
    assert main(["catalogue", "--check", "--suites", str(tmp_path)]) == 1
    assert "LAUNCH-01: no test declares it with @guarantee" in capsys.readouterr().err


def test_cli_writes_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--markdown writes the catalogue document."""
    out = tmp_path / "docs" / "guarantees.md"
    assert main(["catalogue", "--markdown", str(out)]) == 0
    assert out.read_text().startswith("# Guarantee catalogue")
