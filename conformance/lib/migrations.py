"""Migration records of a server (GET /os-migrations, admin).

NOTE: restored in a minimal form after it was accidentally overwritten while
untracked; the move families' helpers live in :mod:`conformance.lib.moves`.
"""

from __future__ import annotations

from typing import Any

from conformance.lib.moves import migrations


def list_migrations(conn: Any, server_id: str, migration_type: str | None = None) -> list[dict[str, Any]]:
    """Every migration record of the server (of ``migration_type``), oldest first."""
    return migrations(conn, server_id, migration_type)
