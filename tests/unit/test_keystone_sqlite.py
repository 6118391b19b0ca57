"""Keystone's sqlite under concurrent read-then-write transactions (oslo.db writers)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("oslo_db")

# Eight threads each run writer transactions that read a row, then update it (as Keystone's
# set_last_active_at does), on a WAL database with a busy timeout.  Run in a child process:
# the fix patches oslo.db and SQLAlchemy for the whole process.
SCRIPT = textwrap.dedent("""
    import sqlite3, sys, threading, time
    import sqlalchemy as sa
    from oslo_db.sqlalchemy import enginefacade
    if sys.argv[2] == "fix":
        from conformance.embedded.keystone_service import immediate_write_transactions
        immediate_write_transactions()
    db = sys.argv[1]
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    con.executemany("INSERT INTO t VALUES (?, 0)", [(i,) for i in range(4)])
    con.commit()
    con.close()
    facade = enginefacade.transaction_context()
    facade.configure(connection=f"sqlite:///{db}?timeout=30")
    errors = []
    class Context: pass
    def work(row):
        for _ in range(15):
            try:
                with facade.writer.using(Context()) as s:
                    v = s.execute(sa.text("SELECT v FROM t WHERE id=:i"), {"i": row}).scalar()
                    time.sleep(0.002)  # widen the window between the read and the write
                    s.execute(sa.text("UPDATE t SET v=:v WHERE id=:i"), {"v": v + 1, "i": row})
            except Exception as exc:
                errors.append(exc)
    threads = [threading.Thread(target=work, args=(n % 4,)) for n in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    con = sqlite3.connect(db)
    print(len(errors), con.execute("SELECT SUM(v) FROM t").fetchone()[0])
""")


def _run(tmp_path: Path, mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"{mode}.db"), mode],
                         capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    errors, total = out.stdout.split()
    return int(errors), int(total)


def test_writer_transactions_never_hit_database_is_locked(tmp_path: Path) -> None:
    """With BEGIN IMMEDIATE for writers, every read-then-write commits and no update is lost."""
    assert _run(tmp_path, "fix") == (0, 8 * 15)


def test_without_the_fix_the_same_load_fails(tmp_path: Path) -> None:
    """The load is real: deferred writer transactions hit 'database is locked'."""
    errors, _total = _run(tmp_path, "nofix")
    assert errors > 0
