"""``up``: start the embedded cloud in the background and return once it is ready.

Start-up is parallel: the Nova process (the slowest), Keystone (setup and
serve in one process) and Glance (db_sync and serve) start together and the
sshd hosts right after; while they boot, this process imports openstacksdk,
then populates Keystone, seeds Glance, creates the flavors and checks that
every compute host is registered.  ``state.json`` is written as soon as the
first process runs, so a failed or interrupted ``up`` can always be undone.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from conformance.embedded import glance_service, keystone_service, procs, profilegen, sshd, watchdog
from conformance.embedded.hoststate import HostState
from conformance.embedded.httpcheck import call_json, status_code
from conformance.embedded.serving import EXIT_PORT_IN_USE, rss_mb, write_json_atomic
from conformance.embedded.workdir import Layout, free_port, port_in_use, write_state

BIND = "127.0.0.1"
PORTS = ("keystone", "glance", "nova", "placement", "control")
NOVA_MODULE = "conformance.embedded.nova_service"
FLAVORS = {profilegen.FLAVOR_SMALL: (1, 512, 1), profilegen.FLAVOR_LARGE: (2, 1024, 2)}


class StartError(RuntimeError):
    """The cloud could not be started; ``log`` is the log that tells why."""

    def __init__(self, reason: str, log: Path | None = None):
        super().__init__(reason)
        self.log = log


@dataclasses.dataclass
class UpOptions:
    """What ``up`` was asked for (see cli.py)."""

    workdir: Path
    hosts: int = 3
    shared_storage: bool = False
    defects: list[str] = dataclasses.field(default_factory=list)
    patches: list[Path] = dataclasses.field(default_factory=list)
    periodic_interval: float | None = None
    ports: dict[str, int] = dataclasses.field(default_factory=dict)
    timeout: float = 300.0
    nova_module: str = NOVA_MODULE
    soft_delete: int | None = None  # reclaim_instance_interval (s): DELETE is a soft delete
    faults: str | None = None  # API fault spec, switched on once the cloud is ready (faults.py)
    shelved_offload_time: int | None = None  # Nova's [DEFAULT] shelved_offload_time (None: -1)
    owner_pid: int | None = None  # a watchdog stops the cloud when this process dies


class Progress:
    """Prints progress lines prefixed with the elapsed time."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed():5.1f}s] {message}", flush=True)


def check_fixed_ports(opts: UpOptions) -> None:
    """Fail early (before touching the workdir) if a fixed ``--port`` is taken."""
    for name, port in opts.ports.items():
        if port_in_use(BIND, port):
            raise StartError(f"port {BIND}:{port} ({name}) is already in use")


def _password() -> str:
    return secrets.token_urlsafe(18)


class Up:
    """One run of ``up`` (call :meth:`run`; on error the caller runs ``down``)."""

    def __init__(self, opts: UpOptions, layout: Layout, progress: Progress):
        self.opts, self.layout, self.say = opts, layout, progress
        self.deadline = time.monotonic() + opts.timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.passwords = {u: _password() for u in keystone_service.TEST_USERS}
        service_password = _password()
        self.passwords.update({u: service_password for u in keystone_service.SERVICE_USERS})
        self.admin_password = _password()
        self.state: dict[str, Any] = {}
        self.hosts: list[sshd.SshHost] = []
        self.admin: Any = None

    # -- planning ---------------------------------------------------------------
    def _pick_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for name in PORTS:
            port = self.opts.ports.get(name)
            if port is not None and port_in_use(BIND, port):
                raise StartError(f"port {BIND}:{port} ({name}) is already in use")
            while port is None or port in ports.values():
                port = free_port(BIND)
            ports[name] = port
        return ports

    def _plan_hosts(self) -> None:
        lay = self.layout
        for i in range(1, self.opts.hosts + 1):
            name, address = f"compute{i}", sshd.host_address(i)
            root = lay.hosts / name
            inst = lay.shared if self.opts.shared_storage else root / "instances"
            self.hosts.append(sshd.SshHost(name, address, free_port(address), root, inst,
                                           lay.ssh / name))
        root = lay.hosts / "controller"
        self.controller = sshd.SshHost("controller", sshd.CONTROLLER_ADDRESS,
                                       free_port(sshd.CONTROLLER_ADDRESS), root,
                                       root / "instances", lay.ssh / "controller")

    def _plan(self) -> None:
        """Reset the workdir, pick ports and hosts, write the initial state."""
        lay = self.layout
        remove_generated(lay)
        if lay.logs.is_dir() and any(lay.logs.iterdir()):
            prev = lay.root / "logs.prev"
            shutil.rmtree(prev, ignore_errors=True)
            lay.logs.rename(prev)
        lay.logs.mkdir(parents=True, exist_ok=True)
        ports = self._pick_ports()
        self._plan_hosts()
        urls = {"keystone": f"http://{BIND}:{ports['keystone']}/v3",
                "glance": f"http://{BIND}:{ports['glance']}",
                "nova": f"http://{BIND}:{ports['nova']}/v2.1",
                "placement": f"http://{BIND}:{ports['placement']}",
                "control": f"http://{BIND}:{ports['control']}"}
        self.state = {
            "workdir": str(lay.root), "status": "starting", "bind": BIND,
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "ports": ports, "urls": urls, "processes": {},
            "hosts": [self._host_record(h) for h in self.hosts],
            "controller": self._host_record(self.controller),
            "shared_storage": self.opts.shared_storage, "defects": self.opts.defects,
            "bootstrap_admin_password": self.admin_password,
        }
        write_state(lay, self.state)

    @staticmethod
    def _host_record(h: sshd.SshHost) -> dict[str, Any]:
        return {"name": h.name, "address": h.address, "port": h.port, "root": str(h.root),
                "instances_path": str(h.instances_path)}

    def _track(self, name: str, proc: subprocess.Popen[bytes], marker: str, log: Path) -> None:
        self.procs[name] = proc
        self.state["processes"][name] = procs.record(proc, marker, log)
        write_state(self.layout, self.state)

    # -- starting processes -----------------------------------------------------
    def _nova_config(self) -> dict[str, Any]:
        ports, urls, lay = self.state["ports"], self.state["urls"], self.layout
        cfg: dict[str, Any] = {
            "workdir": str(lay.root), "bind": BIND,
            "ports": {k: ports[k] for k in ("nova", "placement", "control")},
            "keystone_url": urls["keystone"], "glance_url": urls["glance"],
            "service_password": self.passwords["nova"], "region": keystone_service.REGION,
            "hosts": [{"name": h.name, "root": str(h.root),
                       "instances_path": str(h.instances_path)} for h in self.hosts],
            "shared_storage": self.opts.shared_storage, "defects": self.opts.defects,
            "patches": [str(p) for p in self.opts.patches], "log_dir": str(lay.logs),
            "ready_file": str(lay.nova_ready),
        }
        if self.opts.periodic_interval is not None:
            cfg["periodic_interval"] = self.opts.periodic_interval
        if self.opts.soft_delete is not None:
            cfg["reclaim_instance_interval"] = self.opts.soft_delete
        if self.opts.shelved_offload_time is not None:
            cfg["shelved_offload_time"] = self.opts.shelved_offload_time
        return cfg

    def _start_nova(self) -> None:
        lay = self.layout
        for h in self.hosts:
            HostState(h.root, str(h.instances_path)).ensure()
        write_json_atomic(lay.nova_json, self._nova_config())
        log = lay.log("nova-service")
        proc = procs.spawn_module(self.opts.nova_module, lay.nova_json, log, lay.root)
        self._track("nova", proc, str(lay.nova_json), log)

    def _start_keystone_glance(self) -> None:
        lay, ports, urls = self.layout, self.state["ports"], self.state["urls"]
        ks_log, g_log = lay.log("keystone"), lay.log("glance")
        ks_conf = keystone_service.prepare(lay.keystone, BIND, ports["keystone"], ks_log,
                                           self.admin_password)
        g_conf = glance_service.prepare(lay.glance, BIND, ports["glance"], g_log,
                                        urls["keystone"], self.passwords["glance"])
        for name, conf, log in (("keystone", ks_conf, ks_log), ("glance", g_conf, g_log)):
            module = f"conformance.embedded.{name}_service"
            self._track(name, procs.spawn_module(module, conf, log, lay.root), str(conf), log)

    def _start_sshd(self) -> None:
        lay = self.layout
        everyone = [*self.hosts, self.controller]
        key = sshd.make_keys(lay.ssh, everyone)
        self.controller.root.mkdir(parents=True, exist_ok=True)
        (self.controller.root / "log").symlink_to(lay.logs)
        for h in everyone:
            conf = sshd.write_host(h, lay.ssh, with_virsh=h is not self.controller)
            log = lay.log(f"sshd-{h.name}")
            self._track(f"sshd-{h.name}", sshd.start(h, log), str(conf), log)
        self.state["ssh"] = {"user": profilegen.ssh_user(), "key_file": str(key),
                             "known_hosts": str(lay.ssh / "known_hosts")}

    def _start_watchdog(self) -> None:
        """With ``--owner-pid``: a watchdog stops every process when the owner dies."""
        if self.opts.owner_pid is None:
            return
        path, log = self.layout.root / "watchdog.json", self.layout.log("watchdog")
        self.state["owner"] = watchdog.owner_record(self.opts.owner_pid)
        write_json_atomic(path, watchdog.config(self.state["owner"], dict(self.state["processes"])))
        proc = procs.spawn_module(watchdog.MODULE, path, log, self.layout.root)
        self._track("watchdog", proc, str(path), log)

    # -- waiting and configuring ------------------------------------------------
    def _check_alive(self, name: str) -> None:
        proc, log = self.procs[name], Path(self.state["processes"][name]["log"])
        rc = proc.poll()
        if rc is None:
            return
        why = " (its port is in use)" if rc == EXIT_PORT_IN_USE else ""
        raise StartError(f"the {name} process exited with status {rc}{why}", log)

    def _wait(self, name: str, ready: Any, what: str, interval: float = 0.05) -> None:
        """Poll ``ready()`` until true, failing as soon as any started process dies."""
        while time.monotonic() < self.deadline:
            for started in self.procs:
                self._check_alive(started)
            if ready():
                return
            time.sleep(interval)
        raise StartError(f"{name}: {what} not reached within {self.opts.timeout:.0f}s",
                         Path(self.state["processes"][name]["log"]))

    def _setup_keystone(self) -> None:
        urls = self.state["urls"]
        self._wait("keystone", lambda: status_code(urls["keystone"]) == 200, "HTTP 200")
        self.say(f"keystone answers on {urls['keystone']}")
        endpoints = keystone_service.Endpoints(urls["nova"], urls["placement"], urls["glance"])
        try:
            self.state["projects"] = keystone_service.populate(
                urls["keystone"], self.admin_password, self.passwords, endpoints)
        except Exception as exc:
            raise StartError(f"populating keystone failed: {exc}", self.layout.log("keystone")) from exc
        profilegen.write_clouds(self.layout.clouds, urls["keystone"], self.passwords)
        self.say("keystone populated (projects, users, roles, catalog); clouds.yaml written")

    def _connect(self, cloud: str) -> Any:
        import openstack

        user, project = profilegen.CLOUDS[cloud]
        return openstack.connect(
            load_yaml_config=False, load_envvars=False, auth_url=self.state["urls"]["keystone"],
            username=user, password=self.passwords[user], project_name=project,
            user_domain_name="Default", project_domain_name="Default",
            region_name=keystone_service.REGION, identity_api_version="3")

    def _setup_glance(self) -> None:
        url = self.state["urls"]["glance"]
        self._wait("glance", lambda: status_code(url) in (200, 300), "HTTP answer")
        self.admin = self._connect("embedded-admin")
        try:
            self.state["images"] = glance_service.seed_images(self.admin)
        except Exception as exc:
            raise StartError(f"seeding glance failed: {exc}", self.layout.log("glance")) from exc
        self.say(f"glance answers on {url}; images seeded: {', '.join(self.state['images'])}")

    def _setup_nova(self) -> None:
        ready_file = self.layout.nova_ready
        self._wait("nova", ready_file.exists, "nova.ready.json")
        ready = json.loads(ready_file.read_text())
        self.state.update(network_id=ready["network_id"], nova_ready=ready)
        self.state["extra_capabilities"] = ready.get("capabilities", [])
        self.say(f"nova process ready (its own start-up {ready.get('startup_s', '?')}s)")
        try:
            self._create_flavors()
        except Exception as exc:
            raise StartError(f"creating flavors failed: {exc}", self.layout.log("nova-service")) from exc
        n = self.opts.hosts
        self._wait("nova", lambda: self._registered() >= n, f"{n} registered computes", 0.3)
        self.say(f"{n} computes registered in placement and listed as hypervisors")
        self._check_defects()

    def _create_flavors(self) -> None:
        self.state["flavors"] = {}
        for name, (vcpus, ram, disk) in FLAVORS.items():
            flavor = self.admin.compute.create_flavor(name=name, vcpus=vcpus, ram=ram,
                                                      disk=disk, is_public=True)
            self.state["flavors"][name] = flavor.id

    def _registered(self) -> int:
        """How many computes are both hypervisors in Nova and providers in Placement."""
        hypervisors = {h.name for h in self.admin.compute.hypervisors()}
        providers = {p.name for p in self.admin.placement.resource_providers()}
        return len(hypervisors & providers)

    def _check_defects(self) -> None:
        if not self.opts.defects:
            return
        code, body = call_json("GET", f"{self.state['urls']['control']}/defects", timeout=10)
        if code != 200:
            raise StartError(f"GET /defects answered {code}", self.layout.log("nova-service"))
        known = defect_names(body)
        unknown = [d for d in self.opts.defects if d not in known]
        if unknown:
            raise StartError(f"unknown defect {unknown[0]!r}; known: {', '.join(sorted(known))}")

    def _start_faults(self) -> None:
        """Switch the API faults on last, so that ``up``'s own calls never meet them."""
        if not self.opts.faults:
            return
        import urllib.parse

        query = urllib.parse.urlencode({"spec": self.opts.faults})
        code, body = call_json("POST", f"{self.state['urls']['control']}/faults?{query}", timeout=10)
        if code != 200:
            raise StartError(f"POST /faults answered {code}: {body}", self.layout.log("nova-service"))
        self.state["faults"] = body["spec"]
        self.say(f"API faults on: {body['spec']}")

    def _wait_sshd(self) -> None:
        for h in [*self.hosts, self.controller]:
            self._wait(f"sshd-{h.name}", lambda h=h: sshd.banner_ok(h.address, h.port),
                       "SSH banner")
        self.say(f"sshd answers on {len(self.hosts) + 1} hosts")

    # -- the whole sequence -----------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Start everything and return the final state (raises StartError)."""
        self._plan()
        self._start_nova()
        self._start_keystone_glance()
        self._start_sshd()
        self.say(f"started nova, keystone, glance and {len(self.hosts) + 1} sshd processes")
        self._start_watchdog()
        importlib.import_module("openstack")  # warm the import while the services boot
        self._setup_keystone()
        self._setup_glance()
        self._setup_nova()
        self._wait_sshd()
        self._start_faults()
        self.state.update(status="ready", ready_s=round(self.say.elapsed(), 1))
        write_state(self.layout, self.state)
        profilegen.write_profile(self.layout.profile, self.state, self.layout.root,
                                 self.layout.clouds)
        if self.admin is not None:
            self.admin.close()
        return self.state


def remove_generated(layout: Layout) -> None:
    """Delete what ``up`` generated in the workdir (logs and reports stay)."""
    for path in layout.generated():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def defect_names(catalogue: Any) -> set[str]:
    """Defect names in a ``GET /defects`` answer (a list of records or a mapping)."""
    if isinstance(catalogue, dict) and isinstance(catalogue.get("defects"), list):
        catalogue = catalogue["defects"]
    if isinstance(catalogue, dict):
        return set(catalogue)
    return {d["name"] if isinstance(d, dict) else str(d) for d in catalogue or []}


def summary(state: dict[str, Any]) -> str:
    """Human summary of a ready cloud (printed by ``up``)."""
    root = Path(state["workdir"])
    lines = [f"embedded cloud ready in {state['ready_s']}s (workdir {root})"]
    for name, rec in state["processes"].items():
        url = state["urls"].get(name, "")
        lines.append(f"  {name:<18} pid {rec['pid']:<7} rss {rss_mb(rec['pid']):5.0f} MB  {url}")
    for h in state["hosts"] + [state["controller"]]:
        lines.append(f"  {h['name']:<18} ssh -p {h['port']} -i {state['ssh']['key_file']} "
                     f"-o UserKnownHostsFile={state['ssh']['known_hosts']} "
                     f"{state['ssh']['user']}@{h['address']}")
    lines += [f"  clouds.yaml: {root / 'clouds.yaml'} (clouds embedded-admin, -member, -reader, "
              "-other-member, -other-admin)",
              f"  profile:     {root / 'profile.yaml'}",
              f"  stop with:   python -m conformance.embedded down --workdir {root}"]
    return "\n".join(lines)
