"""A facade over SSH (fabric) to hypervisor hosts, and what the suite reads there.

:class:`Host` runs one command per call: every argument is quoted with
:func:`shlex.quote`, the profile's command prefix (``sudo``, ``docker exec
nova_libvirt``) is put in front, host keys are verified against known_hosts by
default, and every result is attached to the report.  Connection problems raise
:class:`~conformance.errors.HostUnreachable`; a command that must succeed and
does not raises :class:`~conformance.errors.HostCommandError` with the whole
result.  :class:`Libvirt`, :class:`InstanceFiles` and :func:`log_lines` read
the host; :class:`Hypervisor` bundles them for one nova-compute host.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
import time
from pathlib import Path

import fabric
import paramiko
from invoke.exceptions import CommandTimedOut

from conformance.errors import HostCommandError, HostUnreachable
from conformance.lib import evidence


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """The whole outcome of one host command."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    def __str__(self) -> str:
        return (f"host: {self.host}\ncommand: {self.command}\nexit code: {self.exit_code} "
                f"({self.duration:.2f}s)\n--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")


class Host:
    """One SSH target; a connection is opened on first use and reused."""

    def __init__(self, address: str, *, port: int = 22, user: str = "root",
                 key_file: str | Path | None = None, known_hosts: str | Path | None = None,
                 jump_host: str | None = None,
                 command_prefix: str = "", timeout: float = 30.0, connect_timeout: float = 10.0,
                 strict: bool = True, name: str | None = None):
        self.name = name or address
        self.target = f"{user}@{address}:{port}"
        self.prefix = shlex.split(command_prefix)
        self.timeout = timeout
        gateway = None
        if jump_host:
            juser, _, jaddr = jump_host.rpartition("@")
            jhost, _, jport = jaddr.partition(":")
            gateway = self._connection(jhost, int(jport or 22), juser or user, key_file, known_hosts,
                                       connect_timeout, strict, None)
        self._conn = self._connection(address, port, user, key_file, known_hosts, connect_timeout,
                                      strict, gateway)

    @staticmethod
    def _connection(address: str, port: int, user: str, key_file: str | Path | None,
                    known_hosts: str | Path | None, connect_timeout: float, strict: bool,
                    gateway: fabric.Connection | None) -> fabric.Connection:
        kwargs: dict[str, object] = {"banner_timeout": connect_timeout, "auth_timeout": connect_timeout}
        if key_file:
            kwargs.update(key_filename=str(key_file), look_for_keys=False, allow_agent=False)
        config = fabric.Config(overrides={"load_ssh_configs": False})
        conn = fabric.Connection(address, user=user, port=port, config=config, gateway=gateway,
                                 connect_timeout=max(1, round(connect_timeout)), connect_kwargs=kwargs)
        if strict:
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
            if known_hosts:
                conn.client.load_host_keys(str(known_hosts))
            else:
                conn.client.load_system_host_keys()
        return conn

    def command_line(self, *argv: str) -> str:
        """The exact shell command :meth:`run` sends for ``argv``."""
        return " ".join(shlex.quote(str(a)) for a in [*self.prefix, *argv])

    def run(self, *argv: str, check: bool = True, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` on the host; with ``check`` a non-zero exit raises HostCommandError."""
        command = self.command_line(*argv)
        started = time.monotonic()
        try:
            raw = self._conn.run(command, hide=True, warn=True, in_stream=False,
                                 timeout=timeout or self.timeout)
        except CommandTimedOut as exc:
            self.close()
            raise HostCommandError(f"{self.target}: `{command}` timed out after {exc.timeout}s") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostUnreachable(f"{self.target} ({self.name}): {type(exc).__name__}: {exc}") from None
        result = CommandResult(self.name, command, int(raw.exited), raw.stdout, raw.stderr,
                               time.monotonic() - started)
        if result.exit_code == -1:  # the channel closed with no exit status (timeout or lost link)
            self.close()
            limit = timeout or self.timeout
            raise HostCommandError(f"{self.target}: `{command}` timed out after {limit}s or lost its "
                                   f"channel (no exit status)\n{result}")
        evidence.attach_text(f"ssh {self.name}: {command}", str(result))
        if check and result.exit_code != 0:
            raise HostCommandError(f"command failed on {self.target}\n{result}")
        return result

    def close(self) -> None:
        self._conn.close()


NOT_FOUND = re.compile(r"failed to get domain|domain not found|no domain with matching", re.IGNORECASE)


class Libvirt:
    """Read libvirt's view through ``virsh`` on one host (domains by name or UUID)."""

    def __init__(self, host: Host):
        self.host = host

    def _virsh(self, *argv: str) -> CommandResult | None:
        """Run virsh; None if the domain does not exist, HostCommandError on other failures."""
        result = self.host.run("virsh", *argv, check=False)
        if result.exit_code == 0:
            return result
        if NOT_FOUND.search(result.stderr + result.stdout):
            return None
        raise HostCommandError(f"virsh failed on {self.host.target}\n{result}")

    def domain_state(self, domain: str) -> tuple[str, str] | None:
        """``virsh domstate --reason``: e.g. ('paused', 'user'); None if undefined."""
        result = self._virsh("domstate", "--reason", domain)
        if result is None:
            return None
        return parse_domstate(result.stdout)

    def domain_exists(self, domain: str) -> bool:
        """True if the domain is defined (in any state)."""
        return self.domain_state(domain) is not None

    def domains(self) -> list[str]:
        """UUIDs of every defined domain (``virsh list --all --uuid``)."""
        return _lines(self.host.run("virsh", "list", "--all", "--uuid").stdout)

    def domain_names(self) -> list[str]:
        """Names of every defined domain (``virsh list --all --name``)."""
        return _lines(self.host.run("virsh", "list", "--all", "--name").stdout)

    def dominfo(self, domain: str) -> dict[str, str] | None:
        """``virsh dominfo`` as a dict ('State': 'running', ...); None if undefined."""
        result = self._virsh("dominfo", domain)
        if result is None:
            return None
        return _parse_dominfo(result.stdout)

    def domain_xml(self, domain: str) -> str | None:
        """``virsh dumpxml``; None if undefined."""
        result = self._virsh("dumpxml", domain)
        return None if result is None else result.stdout


def _parse_dominfo(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def parse_domstate(text: str) -> tuple[str, str]:
    """'paused (user)' -> ('paused', 'user'); 'shut off' -> ('shut off', '')."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    match = re.fullmatch(r"(.+?)\s*\((.*)\)", line)
    return (match.group(1), match.group(2)) if match else (line, "")


class InstanceFiles:
    """The instance directories (``<instances_path>/<uuid>``) on one host."""

    def __init__(self, host: Host, instances_path: str):
        self.host = host
        self.instances_path = instances_path

    def path(self, uuid: str) -> str:
        return posixpath.join(self.instances_path, uuid)

    def _is_dir(self, path: str) -> bool:
        result = self.host.run("test", "-d", path, check=False)
        if result.exit_code not in (0, 1):
            raise HostCommandError(f"cannot test {path} on {self.host.target}\n{result}")
        return result.exit_code == 0

    def exists(self, uuid: str) -> bool:
        """True if the instance directory exists."""
        return self._is_dir(self.path(uuid))

    def resize_dir_exists(self, uuid: str) -> bool:
        """True if ``<uuid>_resize`` (a resize/migration source copy) exists."""
        return self._is_dir(self.path(uuid) + "_resize")

    def listdir(self, uuid: str) -> list[str] | None:
        """File names in the instance directory; None if it does not exist."""
        if not self.exists(uuid):
            return None
        return sorted(_lines(self.host.run("ls", "-1A", self.path(uuid)).stdout))


def log_lines(host: Host, path: str, request_id: str) -> list[str]:
    """Lines of the log file ``path`` that mention ``request_id`` (``grep -F``)."""
    result = host.run("grep", "-F", "--", request_id, path, check=False)
    if result.exit_code not in (0, 1):
        raise HostCommandError(f"cannot read {path} on {host.target}\n{result}")
    return result.stdout.splitlines()


@dataclasses.dataclass(frozen=True)
class Inspection:
    """One look at a domain and its instance directory (None: absent)."""

    domain_state: tuple[str, str] | None
    dominfo: dict[str, str] | None
    instance_files: list[str] | None


# Three sections, each ended by a marker line carrying its exit code; $1 = uuid, $2 = instance dir.
SECTION = "@@conformance-section rc="
INSPECT_SCRIPT = (
    'section() { out=$("$@" 2>&1); rc=$?; printf "%s\\n' + SECTION + '%s\\n" "$out" "$rc"; }; '
    'section virsh domstate --reason "$1"; section virsh dominfo "$1"; '
    'if [ -d "$2" ]; then section ls -1A "$2"; else printf "' + SECTION + 'absent\\n"; fi'
)


def _split_sections(result: CommandResult) -> list[str | None]:
    """The three outputs of INSPECT_SCRIPT; None where the domain or directory is absent."""
    chunks = result.stdout.split(SECTION)
    if len(chunks) != 4:
        raise HostCommandError(f"unexpected inspection output on {result.host}\n{result}")
    outputs: list[str | None] = []
    for index in range(3):
        text = chunks[index] if index == 0 else chunks[index].split("\n", 1)[1]
        code = chunks[index + 1].split("\n", 1)[0].strip()
        if code == "0":
            outputs.append(text)
        elif code == "absent" or NOT_FOUND.search(text):
            outputs.append(None)
        else:
            raise HostCommandError(f"inspection step {index + 1} failed on {result.host}\n{result}")
    return outputs


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class Hypervisor:
    """Everything the suite reads on one nova-compute host."""

    def __init__(self, name: str, host: Host, instances_path: str, logs: dict[str, str | None] | None = None,
                 hypervisor_hostname: str | None = None):
        self.name = name
        self.host = host
        self.libvirt = Libvirt(host)
        self.files = InstanceFiles(host, instances_path)
        self.logs = {k: v for k, v in (logs or {}).items() if v}
        self.hypervisor_hostname = hypervisor_hostname or name

    def __repr__(self) -> str:
        return f"Hypervisor({self.name}, {self.host.target})"

    def domain_state(self, uuid: str) -> tuple[str, str] | None:
        return self.libvirt.domain_state(uuid)

    def domain_exists(self, uuid: str) -> bool:
        return self.libvirt.domain_exists(uuid)

    def instance_dir_exists(self, uuid: str) -> bool:
        return self.files.exists(uuid)

    def instance_files(self, uuid: str) -> list[str] | None:
        return self.files.listdir(uuid)

    def inspect(self, uuid: str) -> Inspection:
        """Domain state, dominfo and instance files in one SSH round trip."""
        path = self.files.path(uuid)
        result = self.host.run("sh", "-c", INSPECT_SCRIPT, "inspect", uuid, path, check=False)
        state, info, files = _split_sections(result)
        return Inspection(
            domain_state=None if state is None else parse_domstate(state),
            dominfo=None if info is None else _parse_dominfo(info),
            instance_files=None if files is None else sorted(_lines(files)))

    def log_lines(self, request_id: str, log: str = "nova_compute") -> list[str]:
        """Lines of the named log (profile ``logs`` key) that mention ``request_id``."""
        path = self.logs.get(log)
        return log_lines(self.host, path, request_id) if path else []

    def close(self) -> None:
        self.host.close()
