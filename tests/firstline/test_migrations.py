"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select

from firstline.db import Base, Database, migrate, utcnow
from handoff.models import AuditRow, HandoffRow


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        migrate(db.engine)
        migrate(db.engine)  # applying twice is a no-op
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
    finally:
        db.dispose()


def test_upgrade_closes_all_but_the_oldest_open_handoff_of_a_conversation(database_url: str) -> None:
    """Revision 0002 adds one-open-handoff-per-conversation to data made without it."""
    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        migrate(db.engine, "0001")
        now = utcnow()
        rows = [  # (conversation, status); ids follow this order
            ("twice", "queued"),
            ("twice", "closed"),
            ("twice", "assigned"),
            ("twice", "queued"),
            ("once", "assigned"),
        ]
        with db.engine.begin() as connection:
            for number, (conversation, status) in enumerate(rows):
                connection.execute(
                    insert(HandoffRow.__table__).values(
                        conversation_id=conversation,
                        idempotency_key=f"key-{number}",
                        status=status,
                        priority="normal",
                        priority_rank=2,
                        language="en",
                        contact="",
                        summary="",
                        bot_attempt={},
                        created_at=now,
                        updated_at=now,
                        sla_due_at=now,
                        resolution_note="",
                        rating_comment="",
                    )
                )
        migrate(db.engine)
        with db.sessions() as session:
            handoffs = session.scalars(select(HandoffRow).order_by(HandoffRow.id)).all()
            audit = session.scalars(select(AuditRow).order_by(AuditRow.id)).all()
        assert [h.status for h in handoffs] == ["queued", "closed", "closed", "closed", "assigned"]
        first = handoffs[0].id
        for duplicate in (handoffs[2], handoffs[3]):
            assert duplicate.closed_at is not None
            assert f"#{first}" in duplicate.resolution_note
        assert handoffs[1].resolution_note == "" and handoffs[4].closed_at is None
        assert [(a.actor, a.action, a.handoff_id, a.detail) for a in audit] == [
            ("system", "closed", handoffs[2].id, {"duplicate_of": first}),
            ("system", "closed", handoffs[3].id, {"duplicate_of": first}),
        ]
    finally:
        db.dispose()
