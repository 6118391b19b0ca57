"""Defects for the core families: launch, pause and terminate.

Registered into :data:`conformance.embedded.defects.CATALOGUE` on import (see
the bottom of ``defects.py``).  Each breaks the guarantee named in its comment.
"""

from __future__ import annotations

from typing import Any

from conformance.embedded.defects import (
    ACTIONS,
    CATALOGUE,
    HOST,
    PLACEMENT,
    SERVER,
    compute_manager,
    defect,
    drop_event,
    embedded_driver,
    frees_allocations,
    switch_method,
)


# ------------------------------------------------------------------ launch
@defect(SERVER, "launch-hides-addresses")  # LAUNCH-02
def _launch_hides_addresses(name: str, cloud: Any) -> None:
    """The server view shows no addresses: an ACTIVE server seems to have no fixed IP."""
    from nova.api.openstack.compute.views import servers

    def addresses(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        return {}

    switch_method(servers.ViewBuilder, "_get_addresses", name, addresses)


@defect(SERVER, "host-shown-to-member")  # LAUNCH-03
def _host_shown_to_member(name: str, cloud: Any) -> None:
    """Policy os-extended-server-attributes lets a project member see the server's host."""
    from nova import context as nova_context
    from nova.policies import extended_server_attributes as esa

    def can(self: Any, real: Any, action: str, *args: Any, **kwargs: Any) -> Any:
        return True if action == esa.BASE_POLICY_NAME else real(self, action, *args, **kwargs)

    switch_method(nova_context.RequestContext, "can", name, can)


@defect(ACTIONS, "build-event-missing")  # LAUNCH-04
def _no_build_event(name: str, cloud: Any) -> None:
    """The compute__do_build_and_run_instance event of a create is never recorded."""
    drop_event(name, "compute__do_build_and_run_instance")


@defect(PLACEMENT, "launch-frees-allocations")  # LAUNCH-05
def _launch_frees(name: str, cloud: Any) -> None:
    """A newly built server ends ACTIVE holding no Placement allocations."""
    frees_allocations("_do_build_and_run_instance", name)


@defect(HOST, "launch-no-console-log")  # LAUNCH-06
def _launch_no_console_log(name: str, cloud: Any) -> None:
    """Spawn leaves no console.log in the instance directory (libvirt always creates it)."""
    def spawn(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, context, instance, *args, **kwargs)
        (self.hv.instance_dir(instance.uuid) / "console.log").unlink(missing_ok=True)
        return result

    switch_method(embedded_driver(), "spawn", name, spawn)


# ------------------------------------------------------------------ pause
@defect(SERVER, "pause-reports-running")  # PAUSE-01
def _pause_reports_running(name: str, cloud: Any) -> None:
    """A paused server reports power_state 1 (RUNNING) instead of 3 (PAUSED)."""
    from nova.compute import power_state

    def pause(self: Any, real: Any, context: Any, instance: Any) -> Any:
        # The wrong power state goes into the very save that sets PAUSED: a later save of
        # its own would leave a window in which a client sees PAUSED with power_state 3.
        save = instance.save

        def save_running(*args: Any, **kwargs: Any) -> Any:
            instance.power_state = power_state.RUNNING
            return save(*args, **kwargs)

        instance.save = save_running
        try:
            return real(self, context, instance)
        finally:
            del instance.save

    switch_method(compute_manager(), "pause_instance", name, pause)


@defect(SERVER, "pause-drops-addresses")  # PAUSE-02
def _pause_drops_addresses(name: str, cloud: Any) -> None:
    """Pausing a server empties its network info cache: its addresses disappear."""
    from nova.network import model as network_model

    def pause(self: Any, real: Any, context: Any, instance: Any) -> Any:
        result = real(self, context, instance)
        instance.info_cache.network_info = network_model.NetworkInfo([])
        instance.info_cache.save()
        return result

    switch_method(compute_manager(), "pause_instance", name, pause)


@defect(ACTIONS, "pause-event-missing")  # PAUSE-03
def _no_pause_event(name: str, cloud: Any) -> None:
    """The compute_pause_instance event of a pause is never recorded."""
    drop_event(name, "compute_pause_instance")


@defect(PLACEMENT, "pause-frees-allocations")  # PAUSE-04
def _pause_frees(name: str, cloud: Any) -> None:
    """Pausing a server deletes its Placement allocations."""
    frees_allocations("pause_instance", name)


# ------------------------------------------------------------------ terminate
@defect(SERVER, "delete-answers-202")  # DELETE-01
def _delete_answers_202(name: str, cloud: Any) -> None:
    """DELETE /servers/{id} answers 202 Accepted instead of the documented 204."""
    from nova.api.openstack.compute import servers

    codes = servers.ServersController.delete.wsgi_codes

    class Codes:
        def __call__(self, request: Any) -> int:
            return 202 if CATALOGUE.enabled(name) else int(codes(request))

    servers.ServersController.delete.wsgi_codes = Codes()


@defect(ACTIONS, "terminate-event-missing")  # DELETE-02
def _no_terminate_event(name: str, cloud: Any) -> None:
    """The compute_terminate_instance event of a delete is never recorded."""
    drop_event(name, "compute_terminate_instance")
