"""run_embedded: down always runs, and the exit code is the suite's."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from conformance import run_embedded

OWNER = f"--owner-pid={os.getpid()}"  # the cloud's watchdog stops it if run_embedded dies


@dataclasses.dataclass
class FakeRun:
    """Stands in for `embedded up/down`, pytest and the report; records the calls."""

    up_code: int = 0
    pytest_code: int = 1
    interrupt: bool = False
    secrets: bool = False
    calls: list[tuple[str, ...]] = dataclasses.field(default_factory=list)

    def embedded(self, command: str, workdir: Path, *extra: str) -> int:
        self.calls.append((command, *extra))
        return self.up_code if command == "up" else 0

    def scan(self, profile: Path, reports: Path) -> bool:
        self.calls.append(("scan", str(reports)))
        return self.secrets

    def pytest(self, profile: Path, args: list[str]) -> int:
        self.calls.append(("pytest", str(profile), *args))
        if self.interrupt:
            raise KeyboardInterrupt
        return self.pytest_code


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    """A FakeRun patched into run_embedded."""
    run = FakeRun()
    monkeypatch.setattr(run_embedded, "_embedded", run.embedded)
    monkeypatch.setattr(run_embedded, "_pytest", run.pytest)
    monkeypatch.setattr(run_embedded, "_report", lambda: run.calls.append(("report",)))
    monkeypatch.setattr(run_embedded, "_secrets_found", run.scan)
    return run


def test_exit_code_is_the_suites(fake: FakeRun, tmp_path: Path) -> None:
    """up, pytest with the generated profile and extra args, report, down; pytest's exit code."""
    code = run_embedded.main(["--workdir", str(tmp_path), "--up-arg=--defect=x", "--report", "--",
                              "-n", "2"])
    assert code == 1
    assert fake.calls == [("up", OWNER, "--defect=x"), ("pytest", str(tmp_path / "profile.yaml"), "-n", "2"),
                          ("report",), ("scan", "reports"), ("down",)]


@pytest.mark.parametrize(("pytest_code", "expected"), [(0, 6), (1, 1)])
def test_secrets_in_reports_make_a_pass_an_error(fake: FakeRun, tmp_path: Path, pytest_code: int,
                                                  expected: int) -> None:
    """The reports directory given to pytest is scanned before down; a finding turns 0 into 6."""
    fake.pytest_code, fake.secrets = pytest_code, True
    code = run_embedded.main(["--workdir", str(tmp_path), "--", "--reports", "out/r"])
    assert code == expected
    assert fake.calls[-2:] == [("scan", "out/r"), ("down",)]


def test_down_runs_when_up_fails(fake: FakeRun, tmp_path: Path) -> None:
    """A cloud that does not come up is an ERROR (6), and down still runs."""
    fake.up_code = 3
    assert run_embedded.main(["--workdir", str(tmp_path)]) == 6
    assert fake.calls == [("up", OWNER), ("down",)]


def test_down_runs_on_interrupt(fake: FakeRun, tmp_path: Path) -> None:
    """Ctrl-C during the suite still stops the cloud."""
    fake.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        run_embedded.main(["--workdir", str(tmp_path)])
    assert fake.calls[-1] == ("down",)
