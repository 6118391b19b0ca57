"""Real Keystone for the embedded cloud: configure, bootstrap, serve, populate.

The orchestrator calls :func:`prepare` (writes ``keystone.conf`` and the
service's JSON config) and starts ``python -m
conformance.embedded.keystone_service WORKDIR/keystone/service.json``.  That
process imports Keystone once, runs ``fernet_setup``, ``credential_setup``,
``db_sync`` and ``bootstrap`` through ``keystone.cmd.cli.main`` in a forked
child (so the manage commands' global state never leaks into the server),
then serves ``initialize_public_application()``.

Once it answers, the orchestrator calls :func:`populate` (openstacksdk, as
the bootstrap admin) to create the projects, users, roles and catalog.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import sqlite3
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conformance.embedded.serving import load_config, serve_forever, write_json_atomic

REGION = "RegionOne"
TEST_PROJECT = "conformance"
ALT_PROJECT = "conformance-alt"
SERVICE_PROJECT = "service"

# user -> (project, role); every one gets a random password per run.
TEST_USERS: dict[str, tuple[str, str]] = {
    "conformance-admin": (TEST_PROJECT, "admin"),
    "conformance-member": (TEST_PROJECT, "member"),
    "conformance-reader": (TEST_PROJECT, "reader"),
    "conformance-alt-member": (ALT_PROJECT, "member"),
    "conformance-alt-admin": (ALT_PROJECT, "admin"),
}
SERVICE_USERS = ("nova", "placement", "glance")
# True inside an oslo.db writer transaction of this thread (see immediate_write_transactions)
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("keystone_writing", default=False)

_CONF_TEMPLATE = """\
[DEFAULT]
log_file = {log_file}
debug = false
[database]
connection = sqlite:///{db}?timeout=30
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = {dir}/fernet-keys
[fernet_receipts]
key_repository = {dir}/fernet-keys
[credential]
key_repository = {dir}/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
[identity]
password_hash_rounds = 4
"""


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Public URLs that :func:`populate` puts in the service catalog."""

    compute: str
    placement: str
    image: str


def prepare(
    state_dir: Path, bind: str, port: int, log_file: Path, admin_password: str
) -> Path:
    """Write keystone.conf and service.json under ``state_dir``; return the latter."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    for sub in ("fernet-keys", "credential-keys"):
        (state_dir / sub).mkdir(mode=0o700, exist_ok=True)
    conf = state_dir / "keystone.conf"
    conf.write_text(_CONF_TEMPLATE.format(
        log_file=log_file, db=state_dir / "keystone.db", dir=state_dir))
    service = state_dir / "service.json"
    write_json_atomic(service, {
        "conf": str(conf), "db": str(state_dir / "keystone.db"), "bind": bind, "port": port,
        "url": f"http://{bind}:{port}/v3", "admin_password": admin_password,
    })
    return service


def _bootstrap_argv(cfg: dict[str, Any]) -> list[list[str]]:
    """The keystone-manage commands that create a fresh Keystone."""
    owner = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
    url = cfg["url"]
    return [
        ["fernet_setup", *owner],
        ["credential_setup", *owner],
        ["db_sync"],
        # OPTION=VALUE: a generated password may start with "-", which argparse would
        # take for an option of its own ("--bootstrap-password: expected one argument")
        ["bootstrap", f"--bootstrap-password={cfg['admin_password']}",
         "--bootstrap-username=admin", "--bootstrap-project-name=admin",
         "--bootstrap-role-name=admin", "--bootstrap-service-name=keystone",
         f"--bootstrap-region-id={REGION}", f"--bootstrap-public-url={url}",
         f"--bootstrap-internal-url={url}", f"--bootstrap-admin-url={url}"],
    ]


def _enable_wal(db: str) -> None:
    """Switch the sqlite file to WAL so readers never block the writer."""
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def immediate_write_transactions() -> None:
    """Start every oslo.db writer transaction with ``BEGIN IMMEDIATE`` on sqlite.

    A writer transaction usually reads before it writes (``set_last_active_at``
    loads the user, then updates it).  Begun deferred, it holds a WAL read
    snapshot; if another connection commits before it writes, sqlite answers
    SQLITE_BUSY_SNAPSHOT ("database is locked") at once, without waiting for
    the busy timeout, and Keystone turns that into a 500.  ``BEGIN IMMEDIATE``
    takes the write lock first (waiting up to the busy timeout), as a server
    database would make the second writer wait.  Readers stay deferred and
    concurrent: only transactions that write wait for each other.
    """
    import sqlalchemy
    from oslo_db.sqlalchemy import enginefacade

    context = enginefacade._TransactionContext
    for name in ("_session", "_connection"):
        setattr(context, name, _marking_writers(getattr(context, name), enginefacade._WRITER))

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "begin")
    def begin_immediate(conn: Any) -> None:
        # class-level listeners run before oslo.db's per-engine one, which then
        # sees "in_transaction" and emits no BEGIN of its own
        if _WRITING.get() and conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True


def _marking_writers(block: Any, writer: object) -> Any:
    """Wrap a ``_TransactionContext`` block so :data:`_WRITING` is set inside writers."""

    @contextlib.contextmanager
    def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _WRITING.set(_WRITING.get() or self.mode is writer)
        try:
            with block(self, *args, **kwargs) as resource:
                yield resource
        finally:
            _WRITING.reset(token)

    return marked


def _setup_in_child(cfg: dict[str, Any]) -> None:
    """Run the keystone-manage steps in a forked child and wait for it.

    The manage commands register CLI options and providers on Keystone's
    global registries; running them in a child keeps the server clean while
    the (slow) imports done before the fork are shared.
    """
    from keystone.cmd import cli

    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for argv in _bootstrap_argv(cfg):
                cli.CONF.reset()
                cli.CONF.clear()
                cli.main(argv=["keystone-manage", *argv], developer_config_file=cfg["conf"])
            _enable_wal(cfg["db"])
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit("keystone: keystone-manage setup failed (see above)")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the Keystone process: set up if needed, then serve."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m conformance.embedded.keystone_service SERVICE.json")
    cfg = load_config(args[0])
    import warnings

    warnings.simplefilter("ignore")
    from keystone.server import wsgi as keystone_wsgi

    if not os.path.exists(cfg["db"]):
        _setup_in_child(cfg)
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = cfg["conf"]
    sys.argv = sys.argv[:1]  # oslo.config would parse our arguments otherwise
    immediate_write_transactions()
    app = keystone_wsgi.initialize_public_application()
    serve_forever(app, cfg["bind"], int(cfg["port"]), "keystone")


def populate(
    keystone_url: str, admin_password: str, passwords: dict[str, str], endpoints: Endpoints
) -> dict[str, str]:
    """Create projects, roles, users and the catalog; return project ids by name.

    ``passwords`` holds one password per user in :data:`TEST_USERS` and
    :data:`SERVICE_USERS` (the service users share one).  Independent calls
    run on a few threads (Keystone's sqlite is in WAL mode with a busy
    timeout, so concurrent writes wait for each other instead of failing).
    """
    import openstack

    conn = openstack.connect(
        load_yaml_config=False, load_envvars=False, auth_url=keystone_url, username="admin",
        password=admin_password, project_name="admin", user_domain_name="Default",
        project_domain_name="Default", region_name=REGION, identity_api_version="3")
    try:
        idn: Any = conn.identity
        roles = {r.name: r for r in idn.roles()}  # also authenticates, before any thread
        with ThreadPoolExecutor(max_workers=4) as pool:
            catalog = pool.submit(_register_catalog, idn, endpoints)
            projects = _create_projects(pool, idn)
            if "service" not in roles:
                roles["service"] = idn.create_role(name="service")
            grants = [(user, project, role) for user, (project, role) in TEST_USERS.items()]
            grants += [(user, SERVICE_PROJECT, role)
                       for user in SERVICE_USERS for role in ("admin", "service")]
            homes = {user: project for user, project, _ in grants}
            users = {user: pool.submit(idn.create_user, name=user, password=passwords[user],
                                       domain_id="default", default_project_id=projects[home].id)
                     for user, home in homes.items()}
            done = [pool.submit(idn.assign_project_role_to_user, projects[project],
                                users[user].result(), roles[role])
                    for user, project, role in grants]
            for future in [*done, catalog]:
                future.result()
        _first_logins(keystone_url, passwords)
        return {name: p.id for name, p in projects.items()}
    finally:
        conn.close()


def _first_logins(keystone_url: str, passwords: dict[str, str]) -> None:
    """Authenticate every user once, one after the other.

    Keystone writes ``user.last_active_at`` on a user's first login of the
    day; two first logins of one user at once (two xdist workers) make
    sqlite answer "database is locked" (a WAL snapshot conflict the busy
    timeout does not cover), which Keystone turns into a 500.
    """
    import json
    import urllib.request

    for user, password in passwords.items():
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}}}
        request = urllib.request.Request(f"{keystone_url.rstrip('/')}/auth/tokens", method="POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


def _create_projects(pool: ThreadPoolExecutor, idn: Any) -> dict[str, Any]:
    """Create the test, alt and service projects in parallel."""
    futures = {name: pool.submit(idn.create_project, name=name, domain_id="default",
                                 description=f"embedded cloud: {name}")
               for name in (TEST_PROJECT, ALT_PROJECT, SERVICE_PROJECT)}
    return {name: future.result() for name, future in futures.items()}


def _register_catalog(idn: Any, endpoints: Endpoints) -> None:
    """Add compute, placement and image services with three interfaces each."""
    for name, kind, url in (("nova", "compute", endpoints.compute),
                            ("placement", "placement", endpoints.placement),
                            ("glance", "image", endpoints.image)):
        service = idn.create_service(name=name, type=kind, description=f"embedded {name}")
        for interface in ("public", "internal", "admin"):
            idn.create_endpoint(service_id=service.id, interface=interface, url=url,
                                region_id=REGION)


if __name__ == "__main__":
    main()
