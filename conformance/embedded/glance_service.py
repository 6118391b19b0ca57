"""Real Glance for the embedded cloud: configure, db_sync, serve, seed images.

The orchestrator calls :func:`prepare` and starts ``python -m
conformance.embedded.glance_service WORKDIR/glance/service.json``.  That
process imports Glance once, runs ``glance-manage db_sync`` in a forked child
(its CLI options stay out of the server's global config), switches the sqlite
file to WAL and serves ``glance.common.wsgi_app.init_app()`` behind the real
keystonemiddleware (``[paste_deploy] flavor = keystone``) with a file store.

Once Keystone is populated and Glance answers, :func:`seed_images` uploads
the small public images the suite boots from.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import traceback
from pathlib import Path
from typing import Any

from conformance.embedded.serving import load_config, serve_forever, write_json_atomic

# name -> size in bytes of the raw "disk" (a recognisable pattern, not zeros).
SEED_IMAGES: dict[str, int] = {"conformance-image": 4096, "conformance-image-alt": 6144}

_CONF_TEMPLATE = """\
[DEFAULT]
log_file = {log_file}
debug = false
enabled_backends = fs:file
show_image_direct_url = true
show_multiple_locations = false
worker_self_reference_url = {url}
image_cache_dir = {dir}/cache
[database]
connection = sqlite:///{dir}/glance.db?timeout=30
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {dir}/images
[os_glance_staging_store]
filesystem_store_datadir = {dir}/staging
[os_glance_tasks_store]
filesystem_store_datadir = {dir}/tasks
[paste_deploy]
flavor = keystone
config_file = {dir}/etc/glance-api-paste.ini
[keystone_authtoken]
www_authenticate_uri = {keystone_url}
auth_url = {keystone_url}
auth_type = password
username = glance
password = {password}
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
service_token_roles_required = true
[oslo_policy]
enforce_new_defaults = true
enforce_scope = true
"""


def _paste_ini() -> Path:
    """Glance's stock paste pipeline, as installed next to the interpreter."""
    path = Path(sys.prefix) / "etc" / "glance" / "glance-api-paste.ini"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is glance installed in {sys.prefix}?")
    return path


def prepare(
    state_dir: Path, bind: str, port: int, log_file: Path, keystone_url: str, password: str
) -> Path:
    """Write glance-api.conf and service.json under ``state_dir``; return the latter."""
    for sub in ("etc", "images", "staging", "tasks", "cache"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    shutil.copyfile(_paste_ini(), state_dir / "etc" / "glance-api-paste.ini")
    url = f"http://{bind}:{port}"
    conf = state_dir / "etc" / "glance-api.conf"
    conf.write_text(_CONF_TEMPLATE.format(log_file=log_file, dir=state_dir, url=url,
                                          keystone_url=keystone_url, password=password))
    os.chmod(conf, 0o600)
    service = state_dir / "service.json"
    write_json_atomic(service, {"conf": str(conf), "etc": str(state_dir / "etc"),
                                "db": str(state_dir / "glance.db"), "bind": bind,
                                "port": port, "url": url})
    return service


def _db_sync_in_child(cfg: dict[str, Any]) -> None:
    """Run ``glance-manage db_sync`` in a forked child and wait for it."""
    from glance.cmd import manage

    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sys.argv = ["glance-manage", "--config-file", cfg["conf"], "db", "sync"]
            manage.main()
            con = sqlite3.connect(cfg["db"], timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.close()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit("glance: glance-manage db sync failed (see above)")


def _begin_immediate() -> None:
    """Start every sqlite transaction with BEGIN IMMEDIATE instead of oslo.db's BEGIN.

    A deferred transaction that reads first and writes later fails at once with
    "database is locked" (SQLITE_BUSY_SNAPSHOT under WAL, which the busy timeout
    does not cover) when another writer committed meanwhile, e.g. two snapshots
    uploading at once: Glance answers 500.  Taking the write lock at BEGIN makes
    concurrent writers wait for each other.  Class-level listeners run before
    oslo.db's per-engine one, which then sees the transaction and emits nothing.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "begin")
    def begin(conn: Any) -> None:
        if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True


def main(argv: list[str] | None = None) -> None:
    """Entry point of the Glance process: db_sync if needed, then serve."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m conformance.embedded.glance_service SERVICE.json")
    cfg = load_config(args[0])
    import warnings

    warnings.simplefilter("ignore")
    from glance.common import wsgi_app

    if not os.path.exists(cfg["db"]):
        _db_sync_in_child(cfg)
    os.environ["OS_GLANCE_CONFIG_DIR"] = cfg["etc"]
    sys.argv = sys.argv[:1]
    _begin_immediate()
    app = wsgi_app.init_app()
    serve_forever(app, cfg["bind"], int(cfg["port"]), "glance")


def image_bytes(name: str, size: int) -> bytes:
    """Deterministic, non-zero content for a seed image of ``size`` bytes."""
    pattern = f"embedded-cloud seed image {name}\n".encode()
    return (pattern * (size // len(pattern) + 1))[:size]


def seed_images(conn: Any) -> dict[str, str]:
    """Upload :data:`SEED_IMAGES` as public raw images; return their ids by name.

    ``conn`` is an openstacksdk connection with the admin role.
    """
    ids: dict[str, str] = {}
    for name, size in SEED_IMAGES.items():
        image = conn.image.create_image(
            name=name, data=image_bytes(name, size), disk_format="raw",
            container_format="bare", visibility="public", allow_duplicates=True,
            validate_checksum=False)
        ids[name] = image.id
    for name, image_id in ids.items():
        status = conn.image.get_image(image_id).status
        if status != "active":
            raise RuntimeError(f"seed image {name} is {status}, not active")
    return ids


if __name__ == "__main__":
    main()
