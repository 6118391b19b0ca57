"""The Neutron fixture's port methods run one at a time in the embedded cloud."""

from __future__ import annotations

import threading
import time
from typing import Any

from conformance.embedded.fixes import PORT_METHODS, serialize_ports


class FakeFixture:
    """Just enough of NeutronFixture: a dict of ports listed slowly, written by other threads."""

    def __init__(self) -> None:
        self._ports: dict[int, dict[str, Any]] = {n: {} for n in range(50)}

    def _list_resource(self, resources: dict[int, Any], retrieve_all: bool, **_: Any) -> list[Any]:
        out = []
        for port in resources.values():
            time.sleep(0.0005)  # let a writer thread run mid-iteration
            out.append(port)
        return out

    def create_port(self, body: Any = None) -> None:
        self._ports[len(self._ports) + 1000] = {}

    def __getattr__(self, name: str) -> Any:  # the other port methods: no-ops
        if name in PORT_METHODS:
            return lambda *a, **k: None
        raise AttributeError(name)


def hammer(fixture: FakeFixture) -> list[BaseException]:
    """List ports while another thread creates them; the exceptions raised."""
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        while not done.is_set():
            fixture.create_port()
            time.sleep(0.001)

    def reader() -> None:
        try:
            for _ in range(5):
                fixture._list_resource(fixture._ports, True)
        except RuntimeError as exc:
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_serialized_listing_never_sees_a_changing_dict() -> None:
    """With serialize_ports, listing while creating never raises 'changed size during iteration'."""
    class Locked(FakeFixture):
        pass

    for name in PORT_METHODS:  # class attributes for serialize_ports to wrap
        setattr(Locked, name, getattr(FakeFixture, name, lambda *a, **k: None))
    serialize_ports(Locked)
    assert hammer(Locked()) == []


def test_without_the_lock_the_race_is_real() -> None:
    """The same load on the unwrapped fixture raises (the test above can fail)."""
    assert hammer(FakeFixture())
