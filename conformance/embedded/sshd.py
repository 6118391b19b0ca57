"""Hypervisor hosts reachable over real SSH: one Debian OpenSSH sshd per host.

Host ``compute<i>`` listens on ``127.0.0.<10+i>`` and the ``controller`` on
``127.0.0.10``, each on a free port.  Every host has its own ed25519 host
key; one per-run client key is authorised everywhere, and ``known_hosts``
lists every ``[address]:port`` so clients can verify host keys strictly.

A ``ForceCommand`` wrapper gives each login the host's environment
(``EMBEDDED_HOST``, ``EMBEDDED_HOST_ROOT``, ``EMBEDDED_INSTANCES_PATH`` and
``PATH`` with the host's ``bin/`` first, where the ``virsh`` shim lives) and
runs the requested command with ``bash --norc --noprofile``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
INSTALL_HINT = "apt-get install openssh-server"


class SshdError(RuntimeError):
    """sshd is missing or a host could not be prepared or started."""


@dataclasses.dataclass(frozen=True)
class SshHost:
    """One embedded host as the suite reaches it."""

    name: str
    address: str
    port: int
    root: Path
    instances_path: Path
    config_dir: Path  # sshd_config, host key, pid file and ForceCommand wrapper


def host_address(index: int) -> str:
    """Loopback address of compute host ``index`` (1-based): 127.0.0.11, .12, ..."""
    if not 1 <= index <= 200:
        raise ValueError("between 1 and 200 compute hosts are supported")
    return f"127.0.0.{10 + index}"


CONTROLLER_ADDRESS = "127.0.0.10"


def check_installed() -> None:
    """Raise :class:`SshdError` with the install hint if OpenSSH is missing."""
    for tool in (SSHD, shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"):
        if not os.access(tool, os.X_OK):
            raise SshdError(f"{tool} not found: install OpenSSH with `{INSTALL_HINT}`")


def _keygen(path: Path, comment: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_keys(ssh_dir: Path, hosts: list[SshHost]) -> Path:
    """Create the client key, host keys, authorized_keys and known_hosts.

    Returns the path of the client's private key.
    """
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    client = ssh_dir / "id_ed25519"
    jobs = [(client, _keygen(client, "embedded-cloud-client"))]
    for host in hosts:
        host.config_dir.mkdir(parents=True, exist_ok=True)
        key = host.config_dir / "ssh_host_ed25519_key"
        jobs.append((key, _keygen(key, f"embedded-{host.name}")))
    for path, job in jobs:
        _, err = job.communicate()
        if job.returncode != 0:
            raise SshdError(f"ssh-keygen failed for {path}: {err.decode().strip()}")
    auth = ssh_dir / "authorized_keys"
    auth.write_text(client.with_suffix(".pub").read_text())
    os.chmod(auth, 0o600)
    lines = []
    for host in hosts:
        kind, blob = (host.config_dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        lines.append(f"[{host.address}]:{host.port} {kind} {blob}\n")
    (ssh_dir / "known_hosts").write_text("".join(lines))
    return client


_WRAPPER = """\
#!/bin/bash
# ForceCommand of embedded host {name}: the host's environment, then the command.
export EMBEDDED_HOST={name}
export EMBEDDED_HOST_ROOT={root}
export EMBEDDED_INSTANCES_PATH={instances}
export PATH={root}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd "$EMBEDDED_HOST_ROOT" || exit 1
case "$SSH_ORIGINAL_COMMAND" in
  "") exec /bin/bash --norc --noprofile -i ;;
  sftp|internal-sftp) exec {sftp} ;;
  *) exec /bin/bash --norc --noprofile -c "$SSH_ORIGINAL_COMMAND" ;;
esac
"""

_SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {auth}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel INFO
ForceCommand {dir}/login-wrap
MaxStartups 100:30:200
MaxSessions 50
"""

_VIRSH = """\
#!/bin/sh
# virsh of embedded host {name} (reads {root}/libvirt/qemu)
: "${{EMBEDDED_HOST_ROOT:={root}}}"
: "${{EMBEDDED_HOST:={name}}}"
export EMBEDDED_HOST_ROOT EMBEDDED_HOST
exec {python} -S -E {shim} "$@"
"""


def _write_exec(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, 0o755)


def write_host(host: SshHost, ssh_dir: Path, with_virsh: bool = True) -> Path:
    """Write a host's sshd_config, ForceCommand wrapper and ``bin/virsh``.

    Returns the sshd_config path.
    """
    (host.root / "bin").mkdir(parents=True, exist_ok=True)
    d = host.config_dir
    _write_exec(d / "login-wrap", _WRAPPER.format(
        name=host.name, root=host.root, instances=host.instances_path, sftp=SFTP_SERVER))
    if with_virsh:
        shim = Path(__file__).resolve().with_name("virsh.py")
        _write_exec(host.root / "bin" / "virsh", _VIRSH.format(
            name=host.name, root=host.root, python=sys.executable, shim=shim))
    conf = d / "sshd_config"
    conf.write_text(_SSHD_CONFIG.format(address=host.address, port=host.port, dir=d,
                                        auth=ssh_dir / "authorized_keys"))
    return conf


def start(host: SshHost, log_file: Path) -> subprocess.Popen[bytes]:
    """Start the host's sshd in the foreground (-D) in its own session."""
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    except OSError as exc:
        raise SshdError(f"sshd needs /run/sshd ({exc.strerror}): as root run "
                        "`install -d -m 0755 /run/sshd`") from None
    conf = host.config_dir / "sshd_config"
    with open(log_file, "ab") as log:
        return subprocess.Popen([SSHD, "-D", "-f", str(conf), "-E", str(log_file)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)


def banner_ok(address: str, port: int, timeout: float = 1.0) -> bool:
    """True if an SSH server answers with its version banner."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            return s.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def wait_ready(host: SshHost, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until the host's sshd answers; raise if it died or time ran out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SshdError(f"sshd of {host.name} exited with status {proc.returncode}")
        if banner_ok(host.address, host.port):
            return
        time.sleep(0.05)
    raise SshdError(f"sshd of {host.name} did not answer on {host.address}:{host.port}")
