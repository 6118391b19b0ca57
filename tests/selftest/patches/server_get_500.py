"""Site patch for ``embedded up --patch``: GET /servers/{id} answers 500 Internal Server Error.

Nova's ``ServersController.show`` looks the server up as usual; when the
server exists it answers 500 instead of the server (a missing server is
still 404, so deletions can still be seen to finish).  The patch registers
itself as the switchable entry ``server-get-500`` of the defect catalogue and
is on from the start: the control endpoint switches it off
(``DELETE /defects/server-get-500``) and on again (``POST``).
"""

from __future__ import annotations

from typing import Any

NAME = "server-get-500"


def apply() -> None:
    """Register the switch, on from the start (the wrapper is installed with the catalogue)."""
    from conformance.embedded.defects import CATALOGUE, SERVER, defect

    defect(SERVER, NAME)(_install)
    CATALOGUE.switch(NAME, True)


def _install(name: str, cloud: Any) -> None:
    """GET /servers/{id} of an existing server answers 500 (a site patch, not a catalogue defect)."""
    import webob.exc
    from nova.api.openstack.compute import servers

    from conformance.embedded.defects import switch_method

    def show(self: Any, real: Any, req: Any, id: str) -> Any:
        real(self, req, id)  # 404 for a missing server, as usual
        raise webob.exc.HTTPInternalServerError(explanation="injected by the server_get_500 site patch")

    switch_method(servers.ServersController, "show", name, show)
