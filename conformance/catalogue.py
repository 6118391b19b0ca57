"""The guarantee catalogue: loading, validation, coverage and the Markdown doc.

``conformance/guarantees.yaml`` lists every guarantee the suite certifies.
:func:`load_catalogue` validates it (ids ``FAMILY-NN`` and unique, a known
depth and capability, non-empty MUST statement and source) and raises
:class:`CatalogueError` listing every problem.  :func:`scan_markers` finds the
``@guarantee(...)`` ids in the suites without importing them, so coverage
checks are fast and need no cloud.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from conformance.capabilities import CAPABILITIES, DEPTHS

CATALOGUE_PATH = Path(__file__).with_name("guarantees.yaml")
SUITES_PATH = Path(__file__).with_name("suites")
ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*-\d{2,}$")
FIELDS = ("id", "operation", "must", "depth", "capability", "source")
OPTIONAL_FIELDS = ("retired",)


class CatalogueError(Exception):
    """The catalogue file is invalid; ``problems`` lists every finding."""

    def __init__(self, path: Path, problems: list[str]):
        self.path, self.problems = path, problems
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Guarantee:
    """One catalogue entry."""

    id: str
    operation: str
    must: str
    depth: str
    capability: str | None
    source: str
    retired: bool = False

    @property
    def family(self) -> str:
        """The id's prefix, e.g. ``SHELVE`` for ``SHELVE-04``."""
        return self.id.rsplit("-", 1)[0]

    @property
    def anchor(self) -> str:
        """The Markdown anchor of this entry in docs/guarantees.md."""
        return self.id.lower()


def load_catalogue(path: Path = CATALOGUE_PATH) -> dict[str, Guarantee]:
    """Load and validate the catalogue; return its entries by id, in file order."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(path, [f"cannot read the catalogue: {exc}"]) from None
    if not isinstance(data, list):
        raise CatalogueError(path, ["the top level must be a list of entries"])
    problems: list[str] = []
    entries: dict[str, Guarantee] = {}
    for index, raw in enumerate(data):
        entry = _entry(index, raw, problems)
        if entry is None:
            continue
        if entry.id in entries:
            problems.append(f"{entry.id}: duplicate id")
        entries[entry.id] = entry
    if problems:
        raise CatalogueError(path, problems)
    return entries


def _entry(index: int, raw: object, problems: list[str]) -> Guarantee | None:
    if not isinstance(raw, dict):
        problems.append(f"entry #{index + 1}: not a mapping")
        return None
    name = str(raw.get("id") or f"entry #{index + 1}")
    found = len(problems)
    for key in sorted(set(raw) - set(FIELDS) - set(OPTIONAL_FIELDS)):
        problems.append(f"{name}: unknown key {key!r}")
    for key in FIELDS:
        if key not in raw:
            problems.append(f"{name}: missing key {key!r}")
    problems.extend(f"{name}: {p}" for p in _field_problems(raw))
    if len(problems) > found:
        return None
    return Guarantee(**{k: raw[k] for k in FIELDS}, retired=bool(raw.get("retired", False)))


def _field_problems(raw: dict[str, object]) -> list[str]:
    out = []
    if "id" in raw and not ID_PATTERN.match(str(raw["id"])):
        out.append(f"id {raw['id']!r} is not FAMILY-NN (e.g. SHELVE-04)")
    for key in ("operation", "must", "source"):
        value = raw.get(key, "")
        if key in raw and not (isinstance(value, str) and value.strip()):
            out.append(f"{key} must be a non-empty string")
    if "depth" in raw and raw["depth"] not in DEPTHS:
        out.append(f"depth {raw['depth']!r} is not one of {', '.join(DEPTHS)}")
    cap = raw.get("capability")
    if cap is not None and cap not in CAPABILITIES:
        out.append(f"capability {cap!r} is not in conformance/capabilities.py (or null)")
    return out


def scan_markers(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Map each guarantee id used in ``@guarantee(...)`` calls to where it is used.

    Reads the Python files statically (no import): every call of a name or
    attribute called ``guarantee`` with string literal arguments counts.
    """
    found: dict[str, list[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node.func) == "guarantee":
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.setdefault(arg.value, []).append(f"{_display(path)}:{node.lineno}")
    return found


def guarantees_of_test(root: Path, nodeid: str) -> list[str]:
    """The ids of test ``nodeid``'s ``@guarantee(...)`` decorators, read from its file under ``root``.

    For a report that pytest did not make from the test item, so that it has no
    user properties: xdist's report of the test its worker died in.  ``[]`` if
    the file, class or function is not found.
    """
    path, _, names = nodeid.partition("::")
    *classes, function = names.split("::")
    function = re.split(r"[\[@]", function)[0]  # drop [param] and xdist's @group
    try:
        scope: list[ast.stmt] = ast.parse((root / path).read_text()).body
    except (OSError, SyntaxError, ValueError):
        return []
    for name in classes:
        scope = next((n.body for n in scope if isinstance(n, ast.ClassDef) and n.name == name), [])
    for node in scope:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return [arg.value for call in node.decorator_list
                    if isinstance(call, ast.Call) and _called_name(call.func) == "guarantee"
                    for arg in call.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    return []


def suite_files(root: Path = SUITES_PATH) -> list[Path]:
    """The test modules of the suite."""
    return sorted(root.rglob("test_*.py"))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(CATALOGUE_PATH.parent.parent))
    except ValueError:
        return str(path)


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def coverage_problems(catalogue: dict[str, Guarantee], used: dict[str, list[str]]) -> list[str]:
    """Guarantees without a test, and ids used in tests but not in the catalogue."""
    problems = [f"{gid}: no test declares it with @guarantee"
                for gid, g in catalogue.items() if not g.retired and gid not in used]
    for gid, where in sorted(used.items()):
        if gid not in catalogue:
            problems.append(f"{gid}: used at {where[0]} but not in the catalogue")
        elif catalogue[gid].retired:
            problems.append(f"{gid}: retired but still used at {where[0]}")
    return problems


def render_markdown(catalogue: dict[str, Guarantee], used: dict[str, list[str]] | None = None) -> str:
    """The catalogue as a Markdown document, grouped by family, with sources."""
    lines = ["# Guarantee catalogue", "",
             "Generated from `conformance/guarantees.yaml` by "
             "`python -m conformance catalogue --markdown docs/guarantees.md`; do not edit by hand.",
             "", "Depths: " + ", ".join(f"`{d}`" for d in DEPTHS) + ".", ""]
    families: dict[str, list[Guarantee]] = {}
    for g in catalogue.values():
        families.setdefault(g.family, []).append(g)
    for family, entries in families.items():
        lines += [f"## {family}", ""]
        for g in entries:
            lines += _markdown_entry(g, (used or {}).get(g.id, []))
    return "\n".join(lines).rstrip() + "\n"


def _markdown_entry(g: Guarantee, where: list[str]) -> list[str]:
    title = f"### {g.id}" + (" (retired)" if g.retired else "")
    lines = [title, "", g.must.strip(), "",
             f"- operation: `{g.operation}`",
             f"- depth: `{g.depth}`",
             f"- capability: {f'`{g.capability}`' if g.capability else 'none (every cloud)'}",
             f"- source: {g.source.strip()}"]
    if where:
        tests = ", ".join(f"`{w.rsplit(':', 1)[0]}`" for w in dict.fromkeys(where))
        lines.append(f"- tested in: {tests}")
    return [*lines, ""]
