"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from firstline.db import Base, Database, migrate


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
