"""The closed registry of capabilities a profile may claim.

A capability is an optional feature of a deployment.  A test gated on a
capability the profile does not claim is skipped with the reason; a claimed
capability that the cloud visibly lacks is a failure, never a skip.
"""

from __future__ import annotations

CAPABILITIES: dict[str, str] = {
    "pause": "pause/unpause (libvirt virDomainSuspend)",
    "suspend": "suspend/resume (libvirt managed save)",
    "rescue": "rescue/unrescue",
    "lock": "lock/unlock with locked_reason (microversion 2.73)",
    "snapshot": "createImage to Glance",
    "rebuild": "rebuild with another image",
    "shelve": "shelve/unshelve",
    "shelve_offload": "shelveOffload (admin by default)",
    "unshelve_to_host": "unshelve to a named host (microversion 2.91)",
    "soft_delete": "soft delete with restore/forceDelete (reclaim_instance_interval > 0)",
    "cold_migration": "cold migrate with confirm/revert (needs 2 hosts)",
    "resize": "resize with confirm/revert",
    "live_migration": "live migration (needs 2 hosts)",
    "block_migration": "block live migration without shared storage",
    "shared_storage": "live migration with a shared instances path",
    "evacuate": "evacuate from a fenced host (needs 2 hosts and host control)",
    "volumes": "volume attach/detach (Cinder)",
    "console_log": "os-getConsoleOutput",
}

# Roles a profile can name; tests ask for them by these keys.
ROLES: tuple[str, ...] = ("admin", "member", "reader", "other_member", "other_admin")

# Depths of evidence; each guarantee has exactly one.
DEPTHS: tuple[str, ...] = ("api", "trace", "placement", "host")
