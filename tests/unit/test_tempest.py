"""conformance.tempest: subunit reading, per-module summary, tempest.conf from a workdir."""

from __future__ import annotations

import configparser
import datetime
import json
import struct
import zlib
from pathlib import Path

import pytest

from conformance.tempest import config, results, runner, subunit

T0 = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)
SERVER_ACTIONS = "tempest.api.compute.servers.test_server_actions.ServerActionsTestJSON"


def _varint(value: int) -> bytes:
    for size, tag in ((1, 0x00), (2, 0x40), (3, 0x80), (4, 0xC0)):
        if value < 1 << (8 * size - 2):
            return (value | tag << (8 * size - 8)).to_bytes(size, "big")
    raise ValueError(value)


def _text(value: str) -> bytes:
    data = value.encode()
    return _varint(len(data)) + data


def _packet(status: int, test_id: str, at: float, file: tuple[str, bytes] | None = None) -> bytes:
    """One subunit v2 packet, encoded as python-subunit's StreamResultToBytes does."""
    flags = 0x2000 | subunit.FLAG_TEST_ID | subunit.FLAG_TIMESTAMP | status
    body = struct.pack(">I", int((T0 - subunit.EPOCH).total_seconds() + at)) + _varint(0)
    body += _text(test_id)
    if file:
        flags |= subunit.FLAG_FILE_CONTENT | subunit.FLAG_MIME_TYPE
        body += _text("text/plain") + _text(file[0]) + _varint(len(file[1])) + file[1]
    size = 1
    while len(_varint(1 + 2 + size + len(body) + 4)) != size:
        size += 1
    length = 1 + 2 + size + len(body) + 4
    head = bytes([subunit.SIGNATURE]) + struct.pack(">H", flags) + _varint(length)
    return head + body + struct.pack(">I", zlib.crc32(head + body) & 0xFFFFFFFF)


def _run(*tests: tuple[str, int, float, float, tuple[str, bytes] | None]) -> bytes:
    stream = b""
    for test_id, status, start, stop, file in tests:
        stream += _packet(2, test_id, start) + _packet(status, test_id, stop, file)
    return stream


def test_packets_read_status_id_time_and_attachment() -> None:
    """A packet's status, test id, timestamp and file content come back as written."""
    stream = _packet(5, "a.b.C.test_x", 3.0, ("reason", b"no cinder"))
    (packet,) = list(subunit.packets(b"noise\n" + stream))
    assert (packet.status, packet.test_id, packet.file_name, packet.file_bytes) == (
        "skip", "a.b.C.test_x", "reason", b"no cinder")
    assert packet.timestamp == T0 + datetime.timedelta(seconds=3)


def test_packets_reject_a_bad_checksum() -> None:
    """A corrupted packet is an error, not a silently different result."""
    data = bytearray(_packet(3, "a.b.C.test_x", 0.0))
    data[-1] ^= 0xFF
    with pytest.raises(subunit.SubunitError):
        list(subunit.packets(bytes(data)))


def test_summary_counts_per_module_with_wall_time_and_reasons() -> None:
    """Passed, failed and skipped are counted per module; class fixtures count in their module."""
    stream = _run((f"{SERVER_ACTIONS}.test_reboot[id-1,smoke]", 3, 0.0, 10.0, None),
                  (f"{SERVER_ACTIONS}.test_resize[id-2]", 6, 2.0, 30.0,
                   ("traceback", b"Traceback\nAssertionError: boom")),
                  ("tempest.scenario.test_shelve_instance.TestShelveInstance.test_shelve", 5,
                   1.0, 1.0, ("reason", b"needs SSH")),
                  (f"setUpClass ({SERVER_ACTIONS})", 6, 0.0, 1.0, None))
    tests = results.collect(subunit.packets(stream))
    summaries = {s.module: s for s in results.summarise(tests)}
    actions = summaries["tempest.api.compute.servers.test_server_actions"]
    assert (actions.passed, actions.failed, actions.skipped, actions.seconds) == (1, 2, 0, 30.0)
    assert summaries["tempest.scenario.test_shelve_instance"].skipped == 1
    lines = results.not_passed(tests)
    assert lines[0].startswith("FAIL ") and lines[-1].endswith("test_shelve: needs SSH")
    assert f"FAIL {SERVER_ACTIONS}.test_resize: AssertionError: boom" in lines
    assert "| api.compute.servers.test_server_actions | 1 | 2 | 0 | 30 |" in results.table(
        results.summarise(tests))


def test_include_list_anchors_every_module() -> None:
    """Each module becomes one anchored regex that matches only its own tests."""
    lines = runner.include_list(["tempest.api.compute.images.test_images"]).splitlines()
    assert lines == [r"^tempest\.api\.compute\.images\.test_images\."]


def _workdir(tmp_path: Path, **nova: int) -> Path:
    state = {"status": "ready", "urls": {"keystone": "http://127.0.0.1:5000/v3"},
             "bootstrap_admin_password": "pw",
             "images": {config.IMAGE: "img-1", config.IMAGE_ALT: "img-2"},
             "flavors": {config.FLAVOR_SMALL: "fl-1", config.FLAVOR_LARGE: "fl-2"},
             "hosts": [{"name": "compute1"}, {"name": "compute2"}]}
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "nova.json").write_text(json.dumps(nova))
    return tmp_path


def test_conf_comes_from_the_workdir(tmp_path: Path) -> None:
    """tempest.conf names the cloud's Keystone, admin, images, flavors, hosts and offload time."""
    path = config.write_conf(_workdir(tmp_path, shelved_offload_time=0), tmp_path / "etc" / "t.conf")
    conf = configparser.ConfigParser()
    conf.read(path)
    assert conf["identity"]["uri_v3"] == "http://127.0.0.1:5000/v3"
    assert (conf["auth"]["admin_username"], conf["auth"]["admin_password"]) == ("admin", "pw")
    compute = conf["compute"]
    assert (compute["image_ref"], compute["image_ref_alt"]) == ("img-1", "img-2")
    assert (compute["flavor_ref"], compute["flavor_ref_alt"]) == ("fl-1", "fl-2")
    assert (compute["min_compute_nodes"], compute["shelved_offload_time"]) == ("2", "0")
    assert conf["compute-feature-enabled"]["live_migration"] == "true"
    assert conf["service_available"]["cinder"] == "false"
    assert path.stat().st_mode & 0o077 == 0


def test_conf_refuses_a_cloud_that_is_not_ready(tmp_path: Path) -> None:
    """A workdir without a ready cloud is an error that names state.json."""
    with pytest.raises(config.TargetError, match=r"state\.json"):
        config.Target.from_workdir(tmp_path)


def test_report_ends_with_a_closing_count() -> None:
    """The report's last line is the plain 'N passed, N failed, N skipped' a CI log reader counts."""
    from conformance.tempest import cli

    tests = results.collect(subunit.packets(_run(
        (f"{SERVER_ACTIONS}.test_reboot[id-1]", 3, 0.0, 1.0, None),
        (f"{SERVER_ACTIONS}.test_vnc[id-2]", 5, 0.0, 0.0, ("reason", b"no noVNC proxy")))))
    text = cli.report(tests, None)
    assert "- SKIP " in text and text.splitlines()[-1] == "tempest: 1 passed, 0 failed, 1 skipped"
