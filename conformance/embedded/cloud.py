"""The embedded Nova control plane: Nova's functional harness, run as a cloud.

:class:`EmbeddedCloud` is a ``_IntegratedTestBase`` that is set up once and
never torn down.  It brings up sqlite API/cell0/cell1 databases, the
``fake://`` message bus with real asynchronous casts, Placement, the Neutron
and Cinder fixtures (Glance is the real one, found in the Keystone catalog),
conductor, scheduler and one nova-compute per host, and the nova-api paste
application with the real ``keystonemiddleware.auth_token``.

It also owns the run-time controls: stopping, starting and fencing a compute
service and running the periodic tasks.  Import this module only after
``OS_NOVA_DISABLE_EVENTLET_PATCHING=1`` is set (see ``nova_service``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from typing import Any

from nova import context as nova_context
from nova import objects
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import integrated_helpers

from conformance.embedded import auth, computelog, fixes
from conformance.embedded.novaconf import NovaConfig

LOG = logging.getLogger(__name__)
# Nova loads ``nova.virt.<compute_driver>``: expose our driver module there
DRIVER = "embedded.EmbeddedDriver"
CONTROLLER_HOST = "controller"
RPC_WORKERS = 16  # threads per RPC server (see bound_rpc_executors)


def bound_rpc_executors(flags: Any) -> None:
    """Size each RPC server's executor at ``RPC_WORKERS`` threads (oslo.messaging: 64).

    Every RPC server (conductor, scheduler, each compute: 8 in all) has its own
    futurist executor, whose idle workers never exit: after a soak of 8
    parallel boot/delete clients the Nova process held 126 RPC workers and
    kept growing towards 8 x 64.  16 concurrent requests per service is more
    than a test bed sends, and the nested calls of a live migration (source
    -> destination -> source) need only a few.
    """
    from oslo_config import cfg
    from oslo_messaging import server

    cfg.CONF.register_opts(server._pool_opts)
    flags(executor_thread_pool_size=RPC_WORKERS)


class EmbeddedCloud(integrated_helpers._IntegratedTestBase):
    """Nova (API, conductor, scheduler, N computes) and Placement in-process."""

    CAST_AS_CALL = False  # RPC casts are really asynchronous
    STUB_KEYSTONE = False  # the real auth_token middleware and context

    def __init__(self, config: NovaConfig, log_handlers: list[logging.Handler]):
        super().__init__("runTest")
        self.config = config
        self.log_handlers = log_handlers
        self.keystone = auth.KeystoneSettings(
            config.keystone_url, config.service_password, config.region)
        self.services: dict[str, Any] = {}
        self.lock = threading.RLock()

    def runTest(self) -> None:
        """testtools needs a test method; the cloud never runs one."""

    def useFixture(self, fixture: Any) -> Any:
        """Skip the Glance fixture: Nova talks to the real Glance."""
        if isinstance(fixture, nova_fixtures.GlanceFixture):
            return fixture
        return super().useFixture(fixture)

    def _setup_services(self) -> None:
        fixes.install_logging(self.log_handlers)  # harness logging is set up by now
        paste = os.path.join(sys.prefix, "etc", "nova", "api-paste.ini")
        self.flags(api_paste_config=paste, group="wsgi")
        sys.modules.setdefault("nova.virt.embedded", importlib.import_module(
            "conformance.embedded.driver"))
        self.flags(compute_driver=DRIVER)
        # SHELVED is a stable state (an admin can shelve-offload it) unless up --shelved-offload-time
        self.flags(shelved_offload_time=self.config.shelved_offload_time)
        # up --soft-delete: DELETE becomes a soft delete, reclaimed after this many seconds
        self.flags(reclaim_instance_interval=self.config.reclaim_instance_interval)
        self.flags(response_validation="warn", group="api")
        # idle pool workers never exit: bound the power-sync pool (default 1000)
        self.flags(sync_power_state_pool_size=8)
        bound_rpc_executors(self.flags)
        self.flags(region_name=self.config.region, group="glance")
        # a test bed, not a tenant's limit: 8 parallel clients booting and deleting hit the default
        # 10 instances (deleted servers count until their delete finishes) and went to ERROR
        self.flags(instances=100, cores=400, ram=409600, group="quota")
        with auth.nova_authtoken(self.keystone):
            super()._setup_services()

    def _setup_compute_service(self) -> Any:
        for host in self.config.host_names:
            self._start(host)
        return self.services[self.config.host_names[0]]

    # ------------------------------------------------------------ computes
    def _start(self, host: str) -> None:
        with computelog.acting_as(host):
            service = self.start_service("compute", host=host, cell_name="cell1")
        self.services[host] = self.computes[host] = service
        # start_service() points CONF.host at the compute; the API, conductor
        # and scheduler must not look like that compute
        self.flags(host=CONTROLLER_HOST)

    def compute_states(self) -> dict[str, str]:
        """``{"compute1": "up" | "stopped"}`` for every host."""
        return {h: "up" if s is not None else "stopped" for h, s in self.services.items()}

    def _check_host(self, host: str) -> None:
        if host not in self.services:
            raise KeyError(f"unknown compute host {host!r}")

    def stop_compute(self, host: str) -> None:
        """``systemctl stop nova-compute``: the guests stay on the host."""
        with self.lock:
            self._check_host(host)
            service = self.services[host]
            if service is not None:
                with computelog.acting_as(host):
                    service.stop()
                self.services[host] = None
                self.computes.pop(host, None)

    def start_compute(self, host: str) -> None:
        """``systemctl start nova-compute``: init_host runs (evacuation cleanup)."""
        with self.lock:
            self._check_host(host)
            if self.services[host] is None:
                self._start(host)

    def restart_compute(self, host: str) -> None:
        """Stop and start one compute service."""
        with self.lock:
            self.stop_compute(host)
            self.start_compute(host)

    def set_forced_down(self, host: str, forced_down: bool) -> None:
        """Set ``forced_down`` on the host's nova-compute service record."""
        ctx = nova_context.get_admin_context()
        service = objects.Service.get_by_args(ctx, host, "nova-compute")
        service.forced_down = forced_down
        service.save()

    def fence(self, host: str) -> None:
        """Stop the compute and mark it forced down (ready for evacuate)."""
        with self.lock:
            self.stop_compute(host)
            self.set_forced_down(host, True)

    def unfence(self, host: str) -> None:
        """Start the compute again and clear forced down."""
        with self.lock:
            self.start_compute(host)
            self.set_forced_down(host, False)

    # ------------------------------------------------------------ periodics
    def run_periodics(self) -> None:
        """One round of every running compute's periodic tasks.

        Runs the manager's periodic task runner (each task on its own
        spacing) and, every time, ``update_available_resource`` and
        ``_sync_power_states``; then trims the harness's in-memory buffers.
        """
        with self.lock:
            ctx = nova_context.get_admin_context()
            cell = self.cell_mappings["cell1"]
            for host, service in self.services.items():
                if service is None:
                    continue
                with computelog.acting_as(host), nova_context.target_cell(ctx, cell) as cctx:
                    try:
                        service.manager.periodic_tasks(cctx, raise_on_error=False)
                        service.manager.update_available_resource(cctx)
                        service.manager._sync_power_states(cctx)
                    except Exception:
                        LOG.exception("periodic tasks of %s failed", host)
            self.trim_buffers()

    def trim_buffers(self) -> None:
        """Drop the notifications the harness captured (bounded memory)."""
        self.notifier.reset()

    # ------------------------------------------------------------ apps
    def nova_app(self) -> Any:
        """The nova-api WSGI application (auth_token -> NovaKeystoneContext)."""
        return self.api_fixture.app()

    def placement_app(self) -> Any:
        """Placement's WSGI application with auth_token, for the public port."""
        return auth.placement_app(self.placement_fixture.conf_fixture.conf, self.keystone)

    @property
    def network(self) -> dict[str, Any]:
        """The Neutron fixture's network that every project can use."""
        net: dict[str, Any] = self.neutron.network_1
        return net
