"""one open handoff per conversation

Two create requests with different idempotency keys for the same conversation, sent
at the same moment, could both find no open handoff and both insert one, and two
agents could then answer the same user. A partial unique index makes the database
refuse the second. Open duplicates made before this revision are closed first: the
oldest stays open and each later one is closed with a note and an audit entry naming it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 05:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from firstline.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status IN ('queued', 'assigned')"


def upgrade() -> None:
    connection = op.get_bind()
    handoffs = sa.table(
        "handoffs",
        sa.column("id", sa.Integer),
        sa.column("conversation_id", sa.String),
        sa.column("status", sa.String),
        sa.column("closed_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
        sa.column("resolution_note", sa.Text),
    )
    audit = sa.table(
        "audit_log",
        sa.column("at", UTCDateTime()),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("handoff_id", sa.Integer),
        sa.column("detail", sa.JSON),
    )
    open_rows = connection.execute(
        sa.select(handoffs.c.id, handoffs.c.conversation_id)
        .where(handoffs.c.status.in_(("queued", "assigned")))
        .order_by(handoffs.c.conversation_id, handoffs.c.id)
    ).all()
    now = datetime.now(UTC)
    kept: dict[str, int] = {}
    for handoff_id, conversation_id in open_rows:
        first = kept.setdefault(conversation_id, handoff_id)
        if first == handoff_id:
            continue
        connection.execute(
            handoffs.update()
            .where(handoffs.c.id == handoff_id)
            .values(
                status="closed",
                closed_at=now,
                updated_at=now,
                resolution_note=f"Closed on upgrade: handoff #{first} is open for the same conversation.",
            )
        )
        connection.execute(
            audit.insert().values(
                at=now, actor="system", action="closed", handoff_id=handoff_id, detail={"duplicate_of": first}
            )
        )
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.create_index(
            "uq_handoffs_open_conversation",
            ["conversation_id"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_index("uq_handoffs_open_conversation")
