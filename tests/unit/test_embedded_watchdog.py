"""The embedded cloud's owner watchdog (conformance/embedded/watchdog.py), with real processes."""

from __future__ import annotations

import io
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.embedded import procs, watchdog


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two `sleep 60` processes (an owner and a cloud process), killed at the end."""
    started = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(2)]
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _config(owner: subprocess.Popen[bytes], cloud: subprocess.Popen[bytes]) -> dict:
    record = procs.record(cloud, "sleep", Path("/dev/null"))
    return watchdog.config(watchdog.owner_record(owner.pid), {"svc": record}, interval=0.05,
                           grace=2.0)


def test_owner_record_rejects_a_missing_process() -> None:
    """--owner-pid of a process that does not exist is a ValueError naming the pid."""
    with pytest.raises(ValueError, match="--owner-pid 0"):
        watchdog.owner_record(0)


def test_check_watches_on_while_owner_and_cloud_live(sleepers: list) -> None:
    """Owner and cloud alive: nothing to do; cloud gone: exit; owner gone: stop."""
    owner, cloud = sleepers
    cfg = _config(owner, cloud)
    assert watchdog.check(cfg) is None
    cloud.kill()
    cloud.wait()
    assert watchdog.check(cfg) == "exit"
    owner.kill()
    owner.wait()
    assert watchdog.check(cfg) == "stop"


def test_check_sees_a_reused_owner_pid(sleepers: list) -> None:
    """An owner pid now held by a process with another start time counts as gone."""
    owner, cloud = sleepers
    cfg = _config(owner, cloud)
    cfg["owner"]["start"] -= 1
    assert watchdog.check(cfg) == "stop"


def test_watch_stops_the_cloud_when_the_owner_dies(sleepers: list) -> None:
    """Killing the owner makes the watchdog SIGTERM the cloud process within a few polls."""
    owner, cloud = sleepers
    cfg, log = _config(owner, cloud), io.StringIO()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(watchdog.watch(cfg, log)))
    runner.start()
    time.sleep(0.2)
    assert cloud.poll() is None  # the owner lives: the cloud is left alone
    owner.kill()
    owner.wait()
    runner.join(timeout=10)
    assert result == [0] and not procs.running(cfg["processes"]["svc"])  # reaped by stop()
    assert "owner pid" in log.getvalue()
