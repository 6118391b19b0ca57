"""CPU savings of the embedded Nova process that leave Nova's behaviour as it is.

The Nova process (nova-api, conductor, scheduler, every nova-compute and
Placement) is one Python process, bound to one core by the GIL, and it is
the bottleneck of a whole suite run.  Each function here removes work that a
real deployment would not do per request, measured on a full suite run:

* :func:`policy_rules_loaded_once`: oslo.policy looks for policy files on
  disk at every policy check;
* :func:`throwaway_sqlite`: the sqlite databases live only as long as the
  process, so their commits need not wait for the disk;
* :func:`schema_validators_reused`: nova-api built a new JSON-schema
  validator class for every request and response it validated.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any


def replace_once(owner: Any, attr: str, make: Callable[[Any], Any]) -> None:
    """Set ``owner.attr`` to ``make(real)``, the replacement of the current ``real`` one,
    unless an earlier call already replaced it (the fixes run once per process, but
    a test or a ``--patch`` file may apply one again)."""
    real = getattr(owner, attr)
    if getattr(real, "_embedded_replaced", False):
        return
    replacement = make(real)
    replacement._embedded_replaced = True
    setattr(owner, attr, replacement)


def policy_rules_loaded_once() -> None:
    """Resolve the policy rules once per enforcer, not at every check.

    ``Enforcer.enforce`` calls ``load_rules``, which (with no ``policy.yaml``,
    as here) searches every configuration directory for the policy file and
    for ``policy.d`` again each time (``os.path.exists`` per directory), then
    walks every registered default: about 5 % of the process's CPU in a suite
    run, for Nova's and Placement's enforcers.  The embedded cloud writes no
    policy file, so the rules cannot change after the first load: later
    ``load_rules`` calls return at once unless the rules were cleared, a
    reload is forced, or more defaults were registered since.
    """
    from oslo_policy import policy

    def make(real: Any) -> Any:
        @functools.wraps(real)
        def load_rules(self: Any, force_reload: bool = False) -> None:
            key = (id(self.rules), len(self.rules), len(self.registered_rules))
            if not force_reload and self.rules and getattr(self, "_embedded_loaded", None) == key:
                return
            real(self, force_reload)
            self._embedded_loaded = (id(self.rules), len(self.rules), len(self.registered_rules))
        return load_rules

    replace_once(policy.Enforcer, "load_rules", make)


def throwaway_sqlite() -> None:
    """Open every sqlite database with ``PRAGMA synchronous = OFF``.

    The harness puts each database (API, cell0, cell1, Placement) in a WAL
    mode file under the process's temp dir, removed when the process ends.
    With sqlite's default ``synchronous = FULL`` every commit fsyncs the WAL
    file, on the disk of a shared CI machine.  oslo.db's own
    ``sqlite_synchronous = False`` switches that off; force it for every
    sqlite engine (Nova's and Placement's configurations are separate).
    Locking, isolation and what a transaction sees stay the same; only a
    crash of the machine could lose the last commits, of a database that is
    deleted when the process exits anyway.
    """
    from oslo_db.sqlalchemy import engines

    def make(real: Any) -> Any:
        @functools.wraps(real)
        def create_engine(sql_connection: Any, *args: Any, **kwargs: Any) -> Any:
            if str(sql_connection).startswith("sqlite"):
                kwargs["sqlite_synchronous"] = False
            return real(sql_connection, *args, **kwargs)
        return create_engine

    replace_once(engines, "create_engine", make)


SCHEMA_CACHE_SIZE = 4096  # Nova's API has ~600 schemas; more means schemas made per call


def schema_validators_reused() -> None:
    """Build each of nova-api's JSON-schema validators once, not per request.

    ``nova.api.validation`` creates a ``_SchemaValidator`` for every request
    body, query string and response body it checks, and each one derives a
    new validator class (``jsonschema.validators.extend``, an attrs class):
    about 5 % of the process's CPU in a suite run.  The schemas are
    module-level dicts bound by the API decorators, so a validator per
    (schema, options) gives the same verdicts and the same error messages.
    The cache keeps each schema alive (an ``id`` is never reused for another
    schema) and is cleared should it ever grow past ``SCHEMA_CACHE_SIZE``.
    """
    from nova.api.validation import validators

    def make(real: Any) -> Any:
        cache: dict[tuple[int, bool, bool], tuple[Any, Any]] = {}
        lock = threading.Lock()

        def schema_validator(schema: Any, relax_additional_properties: bool = False,
                             is_body: bool = True) -> Any:
            key = (id(schema), bool(relax_additional_properties), bool(is_body))
            hit = cache.get(key)
            if hit is not None and hit[0] is schema:
                return hit[1]
            made = real(schema, relax_additional_properties, is_body)
            with lock:
                if len(cache) >= SCHEMA_CACHE_SIZE:
                    cache.clear()
                cache[key] = (schema, made)
            return made
        return schema_validator

    replace_once(validators, "_SchemaValidator", make)
