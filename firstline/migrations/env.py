"""Alembic environment: runs on the connection `firstline.db.migrate` passes in."""

from __future__ import annotations

from alembic import context

import handoff.models  # noqa: F401  (registers the tables)
import kb_index.models  # noqa: F401
from firstline.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through firstline.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
