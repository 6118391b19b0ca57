"""A read-only ``virsh`` for embedded hypervisor hosts (stdlib only).

Each host's ``bin/virsh`` execs this file with the host root in
``EMBEDDED_HOST_ROOT``.  It reads the domains that the embedded compute
driver keeps in :class:`~conformance.embedded.hoststate.HostState` and prints
them the way libvirt's virsh does (``vsh-table.c`` column layout, a blank
line after every command, ``error: ...`` on stderr and exit status 1).

Supported: ``list`` (``--all --inactive --state-running --state-paused
--state-shutoff --state-other --uuid --name --id --table --managed-save``),
``domstate [--reason]``, ``dominfo``, ``domid``, ``domuuid``, ``domname``,
``domblklist [--details] [--inactive]``, ``dumpxml``, ``hostname``; global
options ``-c/--connect URI``, ``-q/--quiet``, ``-r/--readonly``.

A domain's ``disks`` entries are dicts; the keys read here are ``target``
(or ``dev``), ``source`` (or ``file``/``path``), ``type`` (default
``file``), ``device`` (default ``disk``), ``format`` (default ``qcow2``) and
``bus`` (default ``virtio``) and ``backing`` (optional backing file).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    from conformance.embedded.hoststate import SHUTOFF, Domain, HostState
except ImportError:  # executed as a script by a host's bin/virsh (python -S)
    from hoststate import SHUTOFF, Domain, HostState  # type: ignore[no-redef]

ACTIVE_STATES = ("running", "idle", "paused", "in shutdown", "pmsuspended")
LIST_FLAGS = ("all", "inactive", "state-running", "state-paused", "state-shutoff", "state-other",
              "uuid", "name", "id", "table", "managed-save", "persistent", "transient")


class VirshError(Exception):
    """A command failed; the message is printed as ``error: <message>``."""


class UsageError(VirshError):
    """The command line itself is wrong (virsh rejects it before running it)."""


class Command:
    """Parsed command line of one virsh command: positionals and --options."""

    def __init__(self, name: str, argv: list[str], bools: tuple[str, ...], positional: str = ""):
        self.name = name
        self.flags: set[str] = set()
        self.args: list[str] = []
        for arg in argv:
            if arg.startswith("--") and arg[2:].split("=", 1)[0] == positional and "=" in arg:
                self.args.append(arg.split("=", 1)[1])
            elif arg.startswith("--") and arg[2:] in bools:
                self.flags.add(arg[2:])
            elif arg.startswith("--") and arg != f"--{positional}":
                raise UsageError(f"command '{name}' doesn't support option {arg}")
            elif not arg.startswith("--"):
                self.args.append(arg)
        if positional and not self.args:
            raise UsageError(f"command '{name}' requires <{positional}> option")
        if len(self.args) > (1 if positional else 0):
            raise UsageError(f"unexpected data '{self.args[-1]}'")

    def has(self, flag: str) -> bool:
        return flag in self.flags


def table(header: list[str], rows: list[list[str]], quiet: bool) -> str:
    """Format rows like libvirt's vshTable (header and dashes unless quiet)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c + " " * (widths[i] - len(c) + 2) for i, c in enumerate(cells[:-1])]
        return "".join(f" {c}" for c in [*padded, cells[-1]]) + "\n"

    out = "" if quiet else line(header) + "-" * sum(w + 3 for w in widths) + "\n"
    return out + "".join(line(r) for r in rows)


def is_active(dom: Domain) -> bool:
    return dom.state in ACTIVE_STATES


def _list_filter(cmd: Command) -> Callable[[Domain], bool]:
    """virsh's list semantics: an activity filter AND an (optional) state filter."""
    active, inactive = True, False
    if cmd.has("inactive") or cmd.has("state-shutoff"):
        active, inactive = False, True
    if cmd.has("all"):
        active = inactive = True
    wanted = {s for f, s in (("state-running", "running"), ("state-paused", "paused"),
                             ("state-shutoff", SHUTOFF)) if cmd.has(f)}

    def keep(dom: Domain) -> bool:
        """Whether ``dom`` passes both filters."""
        if not (active and is_active(dom)) and not (inactive and not is_active(dom)):
            return False
        if not wanted and not cmd.has("state-other"):
            return True
        other = cmd.has("state-other") and dom.state not in ("running", "paused", SHUTOFF)
        return dom.state in wanted or other

    return keep


def cmd_list(host: HostState, argv: list[str], quiet: bool) -> str:
    """``virsh list``: a table, or uuids/ids/names one domain per line."""
    cmd = Command("list", argv, LIST_FLAGS)
    if cmd.has("table") and (cmd.has("uuid") or cmd.has("name") or cmd.has("id")):
        raise UsageError("Options --table and --name are mutually exclusive")
    doms = [d for d in host.domains() if _list_filter(cmd)(d)]
    doms.sort(key=lambda d: (0, d.dom_id or 0, "") if is_active(d) else (1, 0, d.name.lower()))
    ident = ["-" if d.dom_id is None or not is_active(d) else str(d.dom_id) for d in doms]
    if not (cmd.has("uuid") or cmd.has("name") or cmd.has("id")):
        def state(d: Domain) -> str:
            saved = cmd.has("managed-save") and d.state == SHUTOFF and d.managed_save
            return "saved" if saved else d.state
        rows = [[i, d.name, state(d)] for i, d in zip(ident, doms, strict=True)]
        return table(["Id", "Name", "State"], rows, quiet)
    lines = []
    for i, d in zip(ident, doms, strict=True):
        if i == "-" and cmd.has("id") and not (cmd.has("uuid") or cmd.has("name")):
            continue  # --id alone lists live domains only
        parts = [d.uuid] if cmd.has("uuid") else []
        parts += [i] if cmd.has("id") else []
        parts += [d.name] if cmd.has("name") else []
        lines.append(" ".join(parts) + "\n")
    return "".join(lines)


def _domain(host: HostState, cmd: Command) -> Domain:
    dom = host.find(cmd.args[0])
    if dom is None:
        raise VirshError(f"failed to get domain '{cmd.args[0]}'")
    return dom


def cmd_domstate(host: HostState, argv: list[str], quiet: bool) -> str:
    cmd = Command("domstate", argv, ("reason",), "domain")
    dom = _domain(host, cmd)
    return f"{dom.state} ({dom.reason})\n" if cmd.has("reason") else f"{dom.state}\n"


def cmd_dominfo(host: HostState, argv: list[str], quiet: bool) -> str:
    """``virsh dominfo DOM``: ``%-15s %s`` lines as libvirt prints them."""
    dom = _domain(host, Command("dominfo", argv, (), "domain"))
    fields = [
        ("Id:", str(dom.dom_id) if is_active(dom) and dom.dom_id is not None else "-"),
        ("Name:", dom.name), ("UUID:", dom.uuid), ("OS Type:", "hvm"), ("State:", dom.state),
        ("CPU(s):", str(dom.vcpus)), ("Max memory:", f"{dom.memory_kib} KiB"),
        ("Used memory:", f"{dom.memory_kib} KiB"), ("Persistent:", "yes"),
        ("Autostart:", "enable" if dom.autostart else "disable"),
        ("Managed save:", "yes" if dom.managed_save else "no"),
        ("Security model:", "none"), ("Security DOI:", "0"),
    ]
    return "".join(f"{k:<15} {v}\n" for k, v in fields)


def cmd_domid(host: HostState, argv: list[str], quiet: bool) -> str:
    dom = _domain(host, Command("domid", argv, (), "domain"))
    return f"{dom.dom_id}\n" if is_active(dom) and dom.dom_id is not None else "-\n"


def cmd_domuuid(host: HostState, argv: list[str], quiet: bool) -> str:
    return f"{_domain(host, Command('domuuid', argv, (), 'domain')).uuid}\n"


def cmd_domname(host: HostState, argv: list[str], quiet: bool) -> str:
    return f"{_domain(host, Command('domname', argv, (), 'domain')).name}\n"


def _disk(disk: dict[str, str]) -> dict[str, str]:
    """Normalise one disk record of a Domain (see the module docstring)."""
    return {
        "type": disk.get("type", "file"), "device": disk.get("device", "disk"),
        "target": disk.get("target") or disk.get("dev") or "vda",
        "source": disk.get("source") or disk.get("file") or disk.get("path") or "-",
        "format": disk.get("format", "qcow2"), "bus": disk.get("bus", "virtio"),
        "backing": disk.get("backing", ""),
    }


def cmd_domblklist(host: HostState, argv: list[str], quiet: bool) -> str:
    """``virsh domblklist DOM [--details]``: the domain's disks as a table."""
    cmd = Command("domblklist", argv, ("details", "inactive"), "domain")
    disks = [_disk(d) for d in _domain(host, cmd).disks]
    if cmd.has("details"):
        rows = [[d["type"], d["device"], d["target"], d["source"]] for d in disks]
        return table(["Type", "Device", "Target", "Source"], rows, quiet)
    return table(["Target", "Source"], [[d["target"], d["source"]] for d in disks], quiet)


def _q(value: object) -> str:
    # xml.sax.saxutils.escape, without its imports (urllib, http, email: 3x this script's start-up)
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("'", "&apos;")


def _backing(disk: dict[str, str]) -> str:
    if not disk["backing"]:
        return ""
    return ("      <backingStore type='file'>\n        <format type='raw'/>\n"
            f"        <source file='{_q(disk['backing'])}'/>\n      </backingStore>\n")


def _nova_metadata(dom: Domain) -> str:
    """The ``<metadata>`` Nova's libvirt driver writes (creationTime: when the XML was generated)."""
    if not dom.defined_at:
        return ""
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dom.defined_at))
    return ("  <metadata>\n"
            "    <nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'>\n"
            "      <nova:package version='34.0.0'/>\n"
            f"      <nova:creationTime>{created}</nova:creationTime>\n"
            "    </nova:instance>\n  </metadata>\n")


def domain_xml(dom: Domain, inactive: bool = False) -> str:
    """A minimal but valid libvirt domain XML document for ``dom``."""
    live = is_active(dom) and dom.dom_id is not None and not inactive
    disks = []
    for d in map(_disk, dom.disks):
        attr = "dev" if d["type"] == "block" else "file"
        disks.append(
            f"    <disk type='{_q(d['type'])}' device='{_q(d['device'])}'>\n"
            f"      <driver name='qemu' type='{_q(d['format'])}' cache='none'/>\n"
            f"      <source {attr}='{_q(d['source'])}'/>\n"
            f"{_backing(d)}"
            f"      <target dev='{_q(d['target'])}' bus='{_q(d['bus'])}'/>\n"
            f"    </disk>\n")
    return (
        f"<domain type='kvm'{f' id={chr(39)}{dom.dom_id}{chr(39)}' if live else ''}>\n"
        f"  <name>{_q(dom.name)}</name>\n  <uuid>{_q(dom.uuid)}</uuid>\n"
        f"{_nova_metadata(dom)}"
        f"  <memory unit='KiB'>{dom.memory_kib}</memory>\n"
        f"  <currentMemory unit='KiB'>{dom.memory_kib}</currentMemory>\n"
        f"  <vcpu placement='static'>{dom.vcpus}</vcpu>\n"
        "  <sysinfo type='smbios'>\n    <system>\n"
        "      <entry name='manufacturer'>OpenStack Foundation</entry>\n"
        "      <entry name='product'>OpenStack Nova</entry>\n"
        f"      <entry name='uuid'>{_q(dom.uuid)}</entry>\n    </system>\n  </sysinfo>\n"
        "  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
        "    <boot dev='hd'/>\n    <smbios mode='sysinfo'/>\n  </os>\n"
        "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n"
        "  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n"
        "  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
        f"{''.join(disks)}  </devices>\n</domain>\n")


def cmd_dumpxml(host: HostState, argv: list[str], quiet: bool) -> str:
    cmd = Command("dumpxml", argv, ("inactive", "security-info", "update-cpu", "migratable"),
                  "domain")
    return domain_xml(_domain(host, cmd), cmd.has("inactive"))


def cmd_hostname(host: HostState, argv: list[str], quiet: bool) -> str:
    Command("hostname", argv, ())
    return (os.environ.get("EMBEDDED_HOST") or host.root.name) + "\n"


COMMANDS: dict[str, Callable[[HostState, list[str], bool], str]] = {
    "list": cmd_list, "domstate": cmd_domstate, "dominfo": cmd_dominfo, "domid": cmd_domid,
    "domuuid": cmd_domuuid, "domname": cmd_domname, "domblklist": cmd_domblklist,
    "dumpxml": cmd_dumpxml, "hostname": cmd_hostname,
}


def _global_options(argv: list[str]) -> tuple[bool, list[str]]:
    """Strip virsh's global options; return (quiet, remaining argv)."""
    quiet, rest = False, list(argv)
    while rest and rest[0].startswith("-"):
        opt = rest.pop(0)
        if opt in ("-q", "--quiet"):
            quiet = True
        elif opt in ("-c", "--connect") and rest:
            rest.pop(0)
        elif not (opt.startswith("--connect=") or opt in ("-r", "--readonly")):
            raise VirshError(f"unsupported option '{opt}'. See --help.")
    return quiet, rest


def main(argv: list[str] | None = None) -> int:
    """Run one virsh command; return its exit status."""
    args = sys.argv[1:] if argv is None else argv
    root = os.environ.get("EMBEDDED_HOST_ROOT")
    try:
        quiet, rest = _global_options(args)
        if not root:
            raise VirshError("failed to connect to the hypervisor (EMBEDDED_HOST_ROOT unset)")
        if not rest:
            raise VirshError("interactive mode is not supported by this virsh")
        handler = COMMANDS.get(rest[0])
        if handler is None:
            raise VirshError(f"unknown command: '{rest[0]}'")
    except VirshError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    host = HostState(Path(root), os.environ.get("EMBEDDED_INSTANCES_PATH") or None)
    try:
        sys.stdout.write(handler(host, rest[1:], quiet))
        status = 0
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except VirshError as exc:
        sys.stderr.write(f"error: {exc}\n")
        status = 1
    if not quiet:
        sys.stdout.write("\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
