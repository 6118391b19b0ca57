"""The sensitivity table (tests/selftest/sensitivity/*.yaml) and how its rows are run.

A row names one defect of the embedded cloud, the suite modules that check the
guarantees it breaks, the guarantees it must make FAIL (``breaks``) and those it
may disturb as well (``collateral``).

Rows run one at a time (each with its defect alone, the proof behind
docs/sensitivity.md) or in **batches**: several defects on at once, each acting on
a different operation family, and one focused suite run for all of their
guarantees. A batch is what makes every row affordable in CI. Its rules keep the
attribution honest:

- two rows of one batch never share a suite module, so no test of one row's
  family exercises another row's defect through its own operation;
- rows whose defect sits on a path every suite takes (boot, delete: the launch
  and terminate modules), evacuate rows (a fenced host must first drain of every
  other server), rows with their own pytest arguments, and rows marked
  ``solo: true`` run alone;
- in a batch, every row's ``breaks`` must FAIL, and every other guarantee of the
  run must pass (or be a row's declared collateral): a defect leaking into another
  family shows up as noise and fails the batch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

TABLE_DIR = Path(__file__).parent / "sensitivity"
# Every suite boots and deletes servers: a defect of these operations reaches every family.
# Evacuate fences a host and first waits for every other server to leave it: a defect of another
# family that leaves an allocation behind (offload-keeps-allocations did, in a batch) blocks it.
SHARED_PATH_SUITES = frozenset({"test_launch.py", "test_terminate.py", "test_evacuate.py"})
MAX_BATCH = 12

Row = dict[str, Any]


def load_table() -> list[Row]:
    """All rows of tests/selftest/sensitivity/*.yaml, in file order."""
    rows: list[Row] = []
    for path in sorted(TABLE_DIR.glob("*.yaml")):
        rows.extend({**row, "table": path.stem} for row in yaml.safe_load(path.read_text()) or [])
    return rows


def selected_rows(rows: list[Row], scope: str) -> list[Row]:
    """Every row (scope 'all'), the first row per suite module set (scope 'family'),
    or the rows of some table files (scope = their stems, e.g. 'core' or 'lock,live')."""
    if scope == "all":
        return rows
    if scope != "family":
        return [row for row in rows if row["table"] in scope.split(",")]
    seen: set[tuple[str, ...]] = set()
    picked = []
    for row in rows:
        key = tuple(row["suites"])
        if key not in seen:
            seen.add(key)
            picked.append(row)
    return picked


def runs_alone(row: Row) -> bool:
    """Whether a row must run with its defect alone (see the module docstring)."""
    return bool(row.get("solo") or row.get("args") or SHARED_PATH_SUITES & set(row["suites"]))


def plan_batches(rows: list[Row], max_size: int = MAX_BATCH) -> list[list[Row]]:
    """Group rows into batches whose rows share no suite module; lone rows stay alone.

    Greedy, rows of the most-used modules first (the largest module sets the least
    number of batches), each row joining the smallest batch with room that touches
    none of its modules, so batches come out even. Deterministic, so a batch id
    names the same rows every run.
    """
    uses = Counter(s for row in rows if not runs_alone(row) for s in row["suites"])
    batches: list[list[Row]] = [[row] for row in rows if runs_alone(row)]
    shared = [row for row in rows if not runs_alone(row)]
    shared.sort(key=lambda row: -max(uses[s] for s in row["suites"]))
    grouped: list[list[Row]] = []
    for row in shared:
        fits = [batch for batch in grouped if len(batch) < max_size
                and not set(row["suites"]) & {s for r in batch for s in r["suites"]}]
        if fits:
            min(fits, key=len).append(row)
        else:
            grouped.append([row])
    return batches + grouped


def keyword_expression(batch: list[Row]) -> str | None:
    """A pytest ``-k`` expression for the rows' ``select`` keys, or None if no row has one.

    A row's ``select`` narrows only its own suite modules: the clause
    ``(not test_a.py and not test_b.py) or (SELECT)`` lets every other module's
    tests through (pytest matches a module's file name as a keyword of its tests).
    """
    clauses = ["(" + " and ".join(f"not {module}" for module in row["suites"]) + f") or ({row['select']})"
               for row in batch if row.get("select")]
    return " and ".join(f"({clause})" for clause in clauses) or None


def batch_id(batch: list[Row]) -> str:
    """A readable pytest id: the first defect and how many others ride along."""
    first = batch[0]["defect"]
    return first if len(batch) == 1 else f"{first}+{len(batch) - 1}"
