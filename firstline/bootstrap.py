"""Development conveniences: demo accounts and the demo knowledge base on a fresh data dir.

None of this runs in production, which has no default accounts and no demo content.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from firstline.config import Settings
from firstline.db import Database
from handoff import auth
from handoff.models import AgentRow
from kb_index.corpus import read_corpus
from kb_index.models import ArticleRow
from kb_index.service import KnowledgeBase
from kb_index.tuning import read_queries, tune

logger = logging.getLogger(__name__)

DEV_PASSWORD = "firstline-dev"
DEV_ACCOUNTS = [
    ("agent@example.com", "Anna Agent", "agent"),
    ("editor@example.com", "Edgars Editor", "editor"),
    ("admin@example.com", "Ada Admin", "admin"),
]


def ensure_dev_accounts(db: Database) -> None:
    with db.session() as session:
        for email, name, role in DEV_ACCOUNTS:
            if not session.scalar(select(func.count()).where(AgentRow.email == email)):
                auth.create_agent(
                    session, email=email, name=name, password=DEV_PASSWORD, role=role,
                    languages=["en", "lv", "ru"],
                )  # fmt: skip
                logger.warning("created development account %s / %s", email, DEV_PASSWORD)


def ensure_demo_kb(settings: Settings, db: Database, kb: KnowledgeBase) -> None:
    """Imports the demo corpus into an empty database and tunes it, once."""
    with db.session() as session:
        count = session.scalar(select(func.count()).select_from(ArticleRow)) or 0
    if count == 0 and settings.demo_corpus_dir and settings.demo_corpus_dir.is_dir():
        counts = kb.import_articles(read_corpus(settings.demo_corpus_dir), "demo")
        logger.warning("imported the demo knowledge base from %s: %s", settings.demo_corpus_dir, counts)
        kb.refresh()
    if kb.ready and settings.demo_eval_dir and settings.demo_eval_dir.is_dir() and not kb.stored_calibration().fitted:
        queries = [
            q for q in read_queries(settings.demo_eval_dir, "validation")
            if q.expected is None or q.expected in kb.index.by_id
        ]  # fmt: skip
        kb.set_calibration(tune(kb.index, kb.embedder.encode_uncached, queries))
        logger.warning("tuned the knowledge base on %d demo validation queries", len(queries))
