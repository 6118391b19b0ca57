"""The shipped example profiles validate against the profile schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.profile import ProfileError, load_profile

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


@pytest.mark.parametrize("name", ["kolla.yaml", "public-cloud-minimal.yaml"])
def test_profile_loads(name: str) -> None:
    """The example profile loads as it is shipped."""
    assert load_profile(PROFILES / name).name == name.removesuffix(".yaml")


def test_devstack_profile_schema_valid() -> None:
    """devstack.yaml is schema-valid; only the files it names may be absent on this machine."""
    try:
        load_profile(PROFILES / "devstack.yaml")
    except ProfileError as exc:
        assert exc.problem.endswith("does not exist"), exc


def test_public_cloud_minimal_has_no_admin_or_hosts() -> None:
    """The minimal public-cloud profile gives no admin and no host access."""
    profile = load_profile(PROFILES / "public-cloud-minimal.yaml")
    assert profile.roles.admin is None and not profile.hosts and profile.controller is None


def test_kolla_profile_runs_virsh_in_container() -> None:
    """The kolla profile prefixes host commands with docker exec nova_libvirt."""
    profile = load_profile(PROFILES / "kolla.yaml")
    for host in profile.hosts.values():
        assert host.command_prefix.endswith("docker exec nova_libvirt")
        assert host.logs.nova_compute == "/var/log/kolla/nova/nova-compute.log"
