"""Placement reads through openstacksdk (these calls need an admin).

Allocations are returned as ``{resource_provider_uuid: {resource_class: amount}}``
and usages as ``{resource_class: amount}``, so tests can compare them with
plain ``==``.
"""

from __future__ import annotations

import math
from typing import Any

from conformance.errors import GuaranteeViolation
from conformance.lib.api import call

MICROVERSION = "1.28"  # consumer generations; older clouds answer the same shapes


def allocations(conn: Any, consumer_uuid: str) -> dict[str, dict[str, int]]:
    """GET /allocations/{consumer}: the resources held per resource provider."""
    body = call(conn, "GET", f"/allocations/{consumer_uuid}", service="placement",
                microversion=MICROVERSION).body
    return {rp: dict(alloc["resources"]) for rp, alloc in body.get("allocations", {}).items()}


def usages(conn: Any, provider_uuid: str) -> dict[str, int]:
    """GET /resource_providers/{rp}/usages: what all consumers hold on it."""
    body = call(conn, "GET", f"/resource_providers/{provider_uuid}/usages", service="placement",
                microversion=MICROVERSION).body
    return dict(body["usages"])


def provider_allocations(conn: Any, provider_uuid: str) -> dict[str, dict[str, int]]:
    """GET /resource_providers/{rp}/allocations: ``{consumer: {rc: n}}`` of every consumer on it."""
    body = call(conn, "GET", f"/resource_providers/{provider_uuid}/allocations", service="placement",
                microversion=MICROVERSION).body
    return {consumer: dict(alloc["resources"]) for consumer, alloc in body.get("allocations", {}).items()}


def provider_for_host(conn: Any, hypervisor_hostname: str) -> str:
    """The uuid of the compute node resource provider named ``hypervisor_hostname``."""
    body = call(conn, "GET", "/resource_providers", service="placement", microversion=MICROVERSION,
                params={"name": hypervisor_hostname}).body
    providers = body.get("resource_providers", [])
    if len(providers) != 1:
        raise GuaranteeViolation(f"expected one resource provider named {hypervisor_hostname!r}, "
                                 f"found {len(providers)}")
    return str(providers[0]["uuid"])


def flavor_resources(flavor: dict[str, Any]) -> dict[str, int]:
    """The resources Nova claims for a flavor (nova/scheduler/utils.py, image-backed).

    Accepts the flavor embedded in a server (2.47+: vcpus, ram, disk,
    ephemeral, swap) or a /flavors entry (OS-FLV-EXT-DATA:ephemeral).
    """
    ephemeral = flavor.get("ephemeral", flavor.get("OS-FLV-EXT-DATA:ephemeral", 0)) or 0
    swap_mb = flavor.get("swap") or 0
    wanted = {"VCPU": int(flavor["vcpus"]), "MEMORY_MB": int(flavor["ram"]),
              "DISK_GB": int(flavor["disk"]) + int(ephemeral) + math.ceil(int(swap_mb) / 1024)}
    return {rc: amount for rc, amount in wanted.items() if amount}


class Placement:
    """The helpers above bound to one (admin) connection."""

    def __init__(self, conn: Any):
        self.conn = conn

    def allocations(self, consumer_uuid: str) -> dict[str, dict[str, int]]:
        return allocations(self.conn, consumer_uuid)

    def usages(self, provider_uuid: str) -> dict[str, int]:
        return usages(self.conn, provider_uuid)

    def provider_for_host(self, hypervisor_hostname: str) -> str:
        return provider_for_host(self.conn, hypervisor_hostname)

    def provider_allocations(self, provider_uuid: str) -> dict[str, dict[str, int]]:
        return provider_allocations(self.conn, provider_uuid)
