"""pytest fixtures: role connections, depth gates, factories and servers in a state.

This is the one place that turns the profile into ready objects for tests;
the lib below it never reads the profile.

Depth gating: ``admin``, ``reader``, ``other_member``, ``other_admin``,
``placement`` and ``hosts`` skip with a stated reason when the profile cannot
provide them, so a test that needs a depth asks for its fixture and is skipped,
never silently passed.  ``observer`` is the exception: it takes whatever depths
exist (via :func:`optional`) so that one scenario, acted once per module, can
record evidence for every depth, and each depth's test then skips on its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
from openstack.config.loader import OpenStackConfig

from conformance.errors import InfraError
from conformance.lib.api import max_microversion, pin_microversion
from conformance.lib.forensics import gather_server_evidence
from conformance.lib.hostcontrol import Fencer, compute_services, usable_hosts
from conformance.lib.hosts import Host, Hypervisor
from conformance.lib.leases import HostLeases
from conformance.lib.observe import Observer
from conformance.lib.placement import Placement
from conformance.lib.resources import (
    BootSpec,
    CleanupRegistry,
    ServerFactory,
    ServerSlots,
    resolve_boot_spec,
)
from conformance.lib.servers import Server, server_action
from conformance.lib.states import Reacher
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Profile, Timeouts

# The highest compute microversion the suite (and openstacksdk's Server) understands.
COMPUTE_CEILING = "2.100"

log = logging.getLogger("conformance")


def optional(request: pytest.FixtureRequest, name: str) -> Any:
    """The value of fixture ``name``, or None if it skips (its depth is absent)."""
    try:
        return request.getfixturevalue(name)
    except pytest.skip.Exception:
        return None


def open_connection(cloud: str, clouds_yaml: Path | None, api_timeout: float) -> Any:
    """Connect to clouds.yaml entry ``cloud`` and pin the compute microversion."""
    from keystoneauth1.exceptions import ClientException

    from conformance.connect import access_error, retry_idempotent

    config = OpenStackConfig(config_files=[str(clouds_yaml)] if clouds_yaml else None)
    # keystoneauth retries would repeat any method; only retry_idempotent's GET retries remain.
    region = config.get_one(cloud=cloud, api_timeout=api_timeout, connect_retries=0,
                            status_code_retries=0, image_status_code_retries=0)
    conn = openstack.connection.Connection(config=region)
    retry_idempotent(conn)
    try:
        pin_microversion(conn, COMPUTE_CEILING)  # the first request: authenticates
    except ClientException as exc:
        raise access_error(exc, cloud, clouds_yaml) from None  # its message carries exc
    return conn


class RoleConnections:
    """One lazily opened connection per role the profile names."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self._conns: dict[str, Any] = {}

    def get(self, role: str) -> Any:
        """The role's connection, or None if the profile does not name the role."""
        cloud = getattr(self.profile.roles, role)
        if cloud is None:
            return None
        if role not in self._conns:
            self._conns[role] = open_connection(cloud, self.profile.clouds_yaml,
                                                self.profile.timeouts.api_call)
        return self._conns[role]

    def opened(self) -> list[Any]:
        return list(self._conns.values())

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()


@pytest.fixture(scope="session")
def connections(profile: Profile) -> Iterator[RoleConnections]:
    conns = RoleConnections(profile)
    yield conns
    conns.close()


def _role(connections: RoleConnections, role: str) -> Any:
    conn = connections.get(role)
    if conn is None:
        pytest.skip(f"profile has no {role} role (roles.{role})")
    return conn


@pytest.fixture(scope="session")
def member(connections: RoleConnections, pytestconfig: pytest.Config) -> Any:
    """The project member's connection (always present); records the cloud's microversions."""
    conn = _role(connections, "member")
    from conformance.plugin import record_cloud_info

    record_cloud_info(pytestconfig, max_microversion=max_microversion(conn),
                      compute_microversion=conn.compute.default_microversion)
    return conn


@pytest.fixture(scope="session")
def admin(connections: RoleConnections) -> Any:
    return _role(connections, "admin")


@pytest.fixture(scope="session")
def reader(connections: RoleConnections) -> Any:
    return _role(connections, "reader")


@pytest.fixture(scope="session")
def other_member(connections: RoleConnections) -> Any:
    return _role(connections, "other_member")


@pytest.fixture(scope="session")
def other_admin(connections: RoleConnections) -> Any:
    return _role(connections, "other_admin")


@pytest.fixture(scope="session")
def timeouts(profile: Profile) -> Timeouts:
    return profile.timeouts


@pytest.fixture(scope="session")
def polling(profile: Profile) -> Polling:
    p = profile.polling
    return Polling(initial=p.initial_interval, maximum=p.max_interval, backoff=p.backoff)


@pytest.fixture(scope="session")
def progress(request: pytest.FixtureRequest) -> Progress:
    """A callback for long waits: a log line, and a terminal line outside xdist workers."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    worker = os.environ.get("PYTEST_XDIST_WORKER")

    def report(line: str) -> None:
        log.info(line)
        if reporter is not None and worker is None:
            reporter.write_line(f"[conformance] {line}")

    return report


@pytest.fixture(scope="session")
def placement(connections: RoleConnections) -> Placement:
    """Placement reads through the admin; skips without admin credentials."""
    conn = connections.get("admin")
    if conn is None:
        pytest.skip("no admin credentials: placement depth skipped")
    return Placement(conn)


@pytest.fixture(scope="session")
def hosts(profile: Profile) -> Iterator[dict[str, Hypervisor]]:
    """nova-compute host name -> Hypervisor facade; skips without host access."""
    if not profile.hosts:
        pytest.skip("profile has no host access: host depth skipped")
    hypervisors = {name: _hypervisor(name, spec, profile.timeouts.host_command)
                   for name, spec in profile.hosts.items()}
    yield hypervisors
    for hypervisor in hypervisors.values():
        hypervisor.close()


def _hypervisor(name: str, spec: Any, timeout: float) -> Hypervisor:
    host = Host(spec.address, port=spec.port, user=spec.user, key_file=spec.key_file,
                known_hosts=spec.known_hosts, jump_host=spec.jump_host, command_prefix=spec.command_prefix,
                timeout=timeout, connect_timeout=spec.connect_timeout,
                strict=spec.strict_host_key_checking, name=name)
    return Hypervisor(name, host, spec.instances_path, spec.logs.model_dump(), spec.hypervisor_hostname)


@pytest.fixture(scope="session")
def observer(request: pytest.FixtureRequest, member: Any) -> Observer:
    """Snapshots at every depth this profile reaches (absent depths are simply not read)."""
    return Observer(member, admin=optional(request, "admin"), placement=optional(request, "placement"),
                    hypervisors=optional(request, "hosts"))


@pytest.fixture(scope="session")
def boot_spec(profile: Profile, member: Any) -> BootSpec:
    res = profile.resources
    return resolve_boot_spec(member, image=res.image, flavor=res.flavor_small, network=res.network)


@pytest.fixture(scope="session")
def worker() -> str:
    """This process's part of resource names: the xdist worker id, or 'main'."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def server_slots(profile: Profile, run_id: str) -> ServerSlots:
    """At most concurrency.max_servers servers at once across all xdist workers."""
    directory = Path(tempfile.gettempdir()) / f"conformance-{run_id}" / "server-slots"
    return ServerSlots(directory, profile.concurrency.max_servers)


def _factory(conn: Any, run_id: str, worker: str, slots: ServerSlots,
             timeouts: Timeouts, polling: Polling) -> Iterator[ServerFactory]:
    cleanup = CleanupRegistry()
    yield ServerFactory(conn, run_id, worker, cleanup, delete_timeout=timeouts.cleanup, poll=polling,
                        slots=slots, slot_timeout=timeouts.server_build + timeouts.cleanup)
    failures = cleanup.run()
    if failures:
        raise InfraError("cleanup failed:\n" + "\n".join(failures))


@pytest.fixture
def server_factory(member: Any, run_id: str, worker: str, server_slots: ServerSlots,
                   timeouts: Timeouts, polling: Polling) -> Iterator[ServerFactory]:
    """Servers owned by the member, deleted after the test."""
    yield from _factory(member, run_id, worker, server_slots, timeouts, polling)


@pytest.fixture(scope="module")
def module_server_factory(member: Any, run_id: str, worker: str, server_slots: ServerSlots,
                          timeouts: Timeouts, polling: Polling) -> Iterator[ServerFactory]:
    """Servers owned by the member, deleted after the module (for shared scenarios)."""
    yield from _factory(member, run_id, worker, server_slots, timeouts, polling)


def boot_active(factory: ServerFactory, spec: BootSpec, suffix: str, *, timeout: float, poll: Polling,
                progress: Progress | None = None) -> Server:
    """Boot one server with ``factory`` and wait until it is ACTIVE."""
    created = factory.create_server(suffix, **spec.kwargs())
    server, _ = wait_for_server(factory.conn, created.id, status="ACTIVE", timeout=timeout, poll=poll,
                                progress=progress)
    return server


@pytest.fixture
def active_server(server_factory: ServerFactory, boot_spec: BootSpec, timeouts: Timeouts,
                  polling: Polling, progress: Progress) -> Server:
    """A member's server, waited ACTIVE."""
    return boot_active(server_factory, boot_spec, "active", timeout=timeouts.server_build, poll=polling,
                       progress=progress)


@pytest.fixture
def paused_server(active_server: Server, member: Any, timeouts: Timeouts, polling: Polling,
                  progress: Progress) -> Server:
    """A member's server, paused and waited PAUSED."""
    server_action(member, active_server.id, "pause")
    server, _ = wait_for_server(member, active_server.id, status="PAUSED", timeout=timeouts.server_action,
                                poll=polling, progress=progress)
    return server


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, for :func:`failure_evidence`."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture(autouse=True)
def failure_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, attach what its servers look like now (JSON, actions, console, host logs)."""
    yield
    report = request.node.stash.get(REPORTS, {}).get("call")
    if report is None or not report.failed:
        return
    # funcargs, not getfixturevalue: a function-scoped factory is already torn down by now
    funcargs = request.node.funcargs
    factories = [funcargs[name] for name in ("server_factory", "module_server_factory") if name in funcargs]
    server_ids = [c.id for f in factories for c in f.created]
    if server_ids:
        collect_evidence(server_ids, request.getfixturevalue("connections"), optional(request, "hosts"))


def collect_evidence(server_ids: list[str], connections: RoleConnections,
                     hypervisors: dict[str, Hypervisor] | None) -> None:
    """Attach server JSON, instance actions, console output and host log lines (best effort)."""
    conn = connections.get("admin") or connections.get("member")
    for server_id in server_ids:
        try:
            gather_server_evidence(conn, server_id, hypervisors or {})
        except Exception as exc:  # evidence must never change the outcome
            log.warning("could not collect evidence for %s: %s", server_id, exc)


@pytest.fixture(scope="session")
def flavor_large(profile: Profile, member: Any) -> Any:
    """The profile's second flavor (resources.flavor_large, resolved), for resizes; skips without one."""
    name = profile.resources.flavor_large
    if not name:
        pytest.skip("profile names no resources.flavor_large")
    try:
        return member.compute.find_flavor(name, ignore_missing=False)
    except openstack.exceptions.ResourceNotFound as exc:
        raise InfraError(f"cannot resolve resources.flavor_large: {exc}") from None


@pytest.fixture(scope="session")
def image_alt(profile: Profile, member: Any) -> str:
    """The id of the profile's second image (resources.image_alt), for rebuilds; skips without one."""
    name = profile.resources.image_alt
    if not name:
        pytest.skip("profile names no resources.image_alt")
    try:
        return str(member.image.find_image(name, ignore_missing=False).id)
    except openstack.exceptions.ResourceNotFound as exc:
        raise InfraError(f"cannot resolve resources.image_alt: {exc}") from None


@pytest.fixture(scope="session")
def reacher(request: pytest.FixtureRequest, profile: Profile, member: Any, boot_spec: BootSpec,
            timeouts: Timeouts, polling: Polling, progress: Progress) -> Reacher:
    """Brings servers into stable states (conformance/lib/states.py) with the profile's roles."""
    large = optional(request, "flavor_large")
    large_id = str(large.id) if large is not None else None
    values = {"flavor_large": large_id, "flavor": large_id or boot_spec.flavor_id,
              "image": optional(request, "image_alt") or boot_spec.image_id}
    conns = {"member": member, "admin": optional(request, "admin")}
    return Reacher(conns, values, profile.capabilities, timeouts, polling, progress)


# ------------------------------------------------------------------ hosts to oneself
# A test that fences a host or names hosts in its requests leases them first (conformance/lib/leases.py):
# only a holder names hosts, and only its own; moves share hosts, a host to fence is leased exclusively
# and, before fencing, the holder drains it
# (conformance/lib/hostcontrol.py:drain), so no other test's server is ever on a fenced host.
LeaseHosts = Callable[..., contextlib.AbstractContextManager[list[str]]]
ScopedFactory = Callable[[Any], contextlib.AbstractContextManager[ServerFactory]]


@pytest.fixture(scope="session")
def host_leases(run_id: str) -> HostLeases:
    """Exclusive host leases shared by every xdist worker of this run."""
    return HostLeases(Path(tempfile.gettempdir()) / f"conformance-{run_id}" / "host-leases")


@pytest.fixture(scope="session")
def lease_hosts(host_leases: HostLeases, admin: Any, timeouts: Timeouts) -> LeaseHosts:
    """``with lease_hosts(2) as (source, dest):`` hosts this test may name (boot on, move between).

    The leases are shared with other moves; ``lease_hosts(2, exclusive=1)`` leases
    the first host exclusively: only then may the test drain or fence it.  Skips
    when the cloud has fewer nova-compute hosts than asked for.  Take the lease
    before creating any server (leases are all-or-nothing, slots are not).
    """
    def lease(count: int, exclusive: int = 0) -> contextlib.AbstractContextManager[list[str]]:
        total = len(compute_services(admin))
        if total < count:
            pytest.skip(f"the cloud has {total} nova-compute host(s); this test needs {count}")
        return host_leases.hold(lambda: usable_hosts(admin), count, timeouts.host_lease, exclusive)

    return lease


@pytest.fixture(scope="session")
def fencer(request: pytest.FixtureRequest, profile: Profile, admin: Any, timeouts: Timeouts) -> Fencer:
    """Takes a nova-compute down by the profile's host_control method; skips without one."""
    control = profile.host_control
    if control.method == "none":
        pytest.skip("profile has no host control (host_control.method: none): no host can be fenced")
    if control.method == "embedded" and not control.control_url:
        pytest.skip("host_control.method embedded without a control_url")
    if control.method == "ssh" and not (control.stop_command and control.start_command):
        pytest.skip("host_control.method ssh needs stop_command and start_command")
    hypervisors = optional(request, "hosts") if control.method == "ssh" else None
    return Fencer(admin, control.method, control_url=control.control_url, hypervisors=hypervisors,
                  stop_command=control.stop_command, start_command=control.start_command,
                  timeout=timeouts.server_action)


@pytest.fixture(scope="session")
def scoped_factory(run_id: str, worker: str, server_slots: ServerSlots, timeouts: Timeouts,
                   polling: Polling) -> ScopedFactory:
    """``with scoped_factory(conn) as factory:`` servers of ``conn``, deleted when the block ends."""
    @contextlib.contextmanager
    def scoped(conn: Any) -> Iterator[ServerFactory]:
        factory = ServerFactory(conn, run_id, worker, CleanupRegistry(), delete_timeout=timeouts.cleanup,
                                poll=polling, slots=server_slots,
                                slot_timeout=timeouts.server_build + timeouts.cleanup)
        try:
            yield factory
        finally:
            failures = factory.cleanup.run()
        if failures:
            raise InfraError("cleanup failed:\n" + "\n".join(failures))

    return scoped
