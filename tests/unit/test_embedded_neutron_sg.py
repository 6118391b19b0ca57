"""The Neutron fake's security groups: per project, found by name like neutronclient finds them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("nova") is None:  # not imported here: see SCRIPT
    pytest.skip("needs the embedded extra (nova)", allow_module_level=True)

# Run in a child process: importing Nova changes threading for the whole process (the
# filelock-based unit tests then fail).  The script prints what each call did, as JSON.
SCRIPT = textwrap.dedent("""
    import json
    from neutronclient.common import exceptions
    from nova.tests.fixtures import neutron
    from conformance.embedded import neutron_sg

    neutron_sg.install(neutron.NeutronFixture)
    fixture = neutron.NeutronFixture(None)
    def client(project):
        fake = neutron._FakeNeutronClient(fixture, False)
        fake.project_id = project
        return fake
    def outcome(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except exceptions.NeutronException as exc:
            return type(exc).__name__
    alice, bob = client("alice"), client("bob")
    web = alice.create_security_group({"security_group": {"name": "web"}})["security_group"]
    db = [alice.create_security_group({"security_group": {"name": "db"}})["security_group"]
          for _ in range(2)]
    find = lambda c, name, project: outcome(
        lambda: c.find_resource("security_group", name, project, fields="id")["id"])
    out = {"web": web, "default_id": fixture.security_group["id"],
           "alice_finds_web": find(alice, "web", "alice"), "bob_finds_web": find(bob, "web", "bob"),
           "bob_shows_web": outcome(bob.show_security_group, web["id"]),
           "bob_finds_default": find(bob, "default", "bob"), "alice_finds_db": find(alice, "db", "alice")}
    fixture._ports[fixture.port_1["id"]] = {**fixture.port_1, "security_groups": [web["id"]]}
    out["delete_in_use"] = outcome(alice.delete_security_group, web["id"])
    fixture._ports[fixture.port_1["id"]]["security_groups"] = []
    out["delete_unused"] = outcome(alice.delete_security_group, web["id"])
    out["alice_lists"] = [g["id"] for g in alice.list_security_groups()["security_groups"]]
    out["db_ids"] = [g["id"] for g in db]
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """What the security-group calls of two projects returned."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True, timeout=300, cwd=root)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_group_is_found_by_name_in_its_project_only(seen: dict[str, Any]) -> None:
    """find_resource by name: the owner finds it, another project gets a 404 (the default is shared)."""
    assert seen["alice_finds_web"] == seen["web"]["id"]
    assert seen["bob_finds_web"] == seen["bob_shows_web"] == "NotFound"
    assert seen["bob_finds_default"] == seen["default_id"]


def test_new_groups_have_egress_rules_and_names_must_be_unique(seen: dict[str, Any]) -> None:
    """A new group has Neutron's two egress rules; two groups of one name are no unique match."""
    assert [r["direction"] for r in seen["web"]["security_group_rules"]] == ["egress", "egress"]
    assert seen["web"]["project_id"] == "alice"
    assert seen["alice_finds_db"] == "NeutronClientNoUniqueMatch"


def test_a_group_in_use_cannot_be_deleted(seen: dict[str, Any]) -> None:
    """Deleting a group a port uses is a 409; an unused one goes away."""
    assert seen["delete_in_use"] == "Conflict"
    assert seen["delete_unused"] is None
    assert seen["web"]["id"] not in seen["alice_lists"]
    assert set(seen["db_ids"]) <= set(seen["alice_lists"])
