"""Database tables of the knowledge base: articles and their revision history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from firstline.db import Base, UTCDateTime, utcnow


class ArticleRow(Base):
    """The current revision of one article in one language."""

    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), index=True)
    translation_group: Mapped[str] = mapped_column(String(120), index=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="published", index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class ArticleRevisionRow(Base):
    """Every saved state of an article, append-only, for history, diff and restore."""

    __tablename__ = "article_revisions"
    __table_args__ = (UniqueConstraint("article_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(String(120), ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(8))
    translation_group: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(200), default="")

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.article_id,
            "language": self.language,
            "translation_group": self.translation_group,
            "title": self.title,
            "body": self.body,
            "questions": list(self.questions),
            "tags": list(self.tags),
            "status": self.status,
        }


class QueryLogRow(Base):
    """A question the bot asked the knowledge base, and how it ended.

    The content-gap report and the bot-resolution metrics are computed from these.
    """

    __tablename__ = "kb_query_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(200), index=True)
    query: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    decision: Mapped[str] = mapped_column(String(16))
    article_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    confidence: Mapped[float] = mapped_column(default=0.0)
    #: None until the user says; then "helped", "not_helped" or "handed_off".
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
