"""What editors learn from the conversations: content gaps and the dashboard figures.

A content gap is a question the knowledge base did not resolve: the bot found
nothing, the user said the answer did not help, or the conversation went to a
person. Gaps are grouped by meaning (sentence embeddings, greedy clustering per
language), so that editors see "VPN certificate expired" asked 14 times in three
wordings rather than 14 rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from firstline.db import utcnow
from handoff.models import HandoffRow
from kb_index.embedder import Embedder
from kb_index.models import ArticleRow, QueryLogRow

#: At least this similar to the group centroid joins a group, on the scale from the language's
#: background similarity (0) to identity (1) (`kb_index.language_index.background_similarity`),
#: which is about the same for every encoder.
GAP_SIMILARITY = 0.4
MAX_GAP_QUERIES = 3000


@dataclass
class Gap:
    language: str
    examples: list[str] = field(default_factory=list)
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_seen: datetime | None = None
    centroid: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.examples[0] if self.examples else "",
            "language": self.language,
            "count": self.count,
            "examples": self.examples[:8],
            "reasons": dict(self.reasons),
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def gap_queries(session: Session, since: datetime, language: str | None = None) -> list[tuple[str, str, str, datetime]]:
    """(query, language, reason, when) for every unresolved question since `since`."""
    handed_off = set(session.scalars(select(HandoffRow.conversation_id).where(HandoffRow.created_at >= since)))
    query = select(QueryLogRow).where(QueryLogRow.created_at >= since)
    if language:
        query = query.where(QueryLogRow.language == language)
    rows = session.scalars(query.order_by(QueryLogRow.created_at.desc()).limit(MAX_GAP_QUERIES * 3))
    found = []
    for row in rows:
        if row.decision == "none":
            reason = "no_answer"
        elif row.outcome == "not_helped":
            reason = "not_helped"
        elif row.conversation_id in handed_off and row.outcome != "helped":
            reason = "handed_off"
        else:
            continue
        found.append((row.query, row.language, reason, _aware(row.created_at)))
        if len(found) >= MAX_GAP_QUERIES:
            break
    return found


def content_gaps(
    session: Session,
    embedder: Embedder,
    days: int = 30,
    limit: int = 50,
    language: str | None = None,
    background: Callable[[str], float] = lambda language: 0.0,
) -> list[dict[str, Any]]:
    """Unresolved questions grouped by meaning, the most frequent first.

    Args:
        background: a language's background similarity (`KnowledgeBase.background`).
    """
    queries = gap_queries(session, utcnow() - timedelta(days=days), language)
    if not queries:
        return []
    vectors = embedder.encode_queries([q[0] for q in queries])
    gaps: list[Gap] = []
    for (text, language, reason, when), vector in zip(queries, vectors, strict=True):
        floor = background(language)
        best, best_similarity = None, GAP_SIMILARITY
        for gap in gaps:
            if gap.language != language or gap.centroid is None:
                continue
            cosine = float(gap.centroid @ vector) / max(1e-9, float(np.linalg.norm(gap.centroid)))
            similarity = (cosine - floor) / max(1e-6, 1 - floor)
            if similarity >= best_similarity:
                best, best_similarity = gap, similarity
        if best is None:
            best = Gap(language=language, centroid=np.zeros_like(vector))
            gaps.append(best)
        assert best.centroid is not None
        best.centroid = best.centroid + vector
        best.count += 1
        best.reasons[reason] += 1
        best.last_seen = max(best.last_seen or when, when)
        if text not in best.examples:
            best.examples.append(text)
    gaps.sort(key=lambda g: (-g.count, -(g.last_seen or utcnow()).timestamp()))
    return [g.to_dict() for g in gaps[:limit]]


def dashboard(session: Session, days: int = 30, language: str | None = None) -> dict[str, Any]:
    """Conversations, bot resolution, handoffs and CSAT per day; top articles; per language.

    With `language`, only conversations in that language count.
    """
    now = utcnow()
    since = now - timedelta(days=days)
    log_query = select(
        QueryLogRow.conversation_id,
        QueryLogRow.language,
        QueryLogRow.created_at,
        QueryLogRow.decision,
        QueryLogRow.article_id,
        QueryLogRow.outcome,
    ).where(QueryLogRow.created_at >= since)
    handoff_query = select(
        HandoffRow.conversation_id, HandoffRow.language, HandoffRow.created_at, HandoffRow.rating, HandoffRow.rated_at
    ).where(HandoffRow.created_at >= since)
    if language:
        log_query = log_query.where(QueryLogRow.language == language)
        handoff_query = handoff_query.where(HandoffRow.language == language)
    logs = session.execute(log_query).all()
    handoffs = session.execute(handoff_query).all()
    first_seen: dict[str, tuple[str, str]] = {}
    for conversation, language, created, *_ in sorted(logs, key=lambda r: _aware(r[2])):
        first_seen.setdefault(conversation, (_aware(created).date().isoformat(), language))
    handed_off: dict[str, tuple[str, str]] = {}
    for conversation, language, created, *_ in handoffs:
        handed_off.setdefault(conversation, (_aware(created).date().isoformat(), language))
        first_seen.setdefault(conversation, (_aware(created).date().isoformat(), language))
    days_list = [(since + timedelta(days=i + 1)).date().isoformat() for i in range(days)]
    per_day: dict[str, dict[str, Any]] = {
        d: {"date": d, "conversations": 0, "resolved_by_bot": 0, "handoffs": 0, "csat": []} for d in days_list
    }
    per_language: dict[str, Counter[str]] = defaultdict(Counter)
    for conversation, (day, language) in first_seen.items():
        if day in per_day:
            per_day[day]["conversations"] += 1
            per_day[day]["resolved_by_bot"] += conversation not in handed_off
        per_language[language]["conversations"] += 1
        per_language[language]["resolved_by_bot"] += conversation not in handed_off
    for day, language in handed_off.values():
        if day in per_day:
            per_day[day]["handoffs"] += 1
        per_language[language]["handoffs"] += 1
    for *_, rating, rated_at in handoffs:
        if rating is not None and rated_at is not None:
            day = _aware(rated_at).date().isoformat()
            if day in per_day:
                per_day[day]["csat"].append(rating)
    series = []
    for day in days_list:
        entry = per_day[day]
        ratings = entry.pop("csat")
        entry["csat"] = round(sum(ratings) / len(ratings), 2) if ratings else None
        series.append(entry)
    answered: Counter[str] = Counter()
    helped: Counter[str] = Counter()
    not_helped: Counter[str] = Counter()
    for _, _, _, decision, article, outcome in logs:
        if article and decision == "answer":
            answered[article] += 1
            helped[article] += outcome == "helped"
            not_helped[article] += outcome == "not_helped"
    titles = {row.id: row.title for row in session.execute(select(ArticleRow.id, ArticleRow.title))}
    top_articles = [
        {"article_id": a, "title": titles.get(a, a), "answers": n, "helped": helped[a], "not_helped": not_helped[a]}
        for a, n in answered.most_common(10)
    ]
    total = len(first_seen)
    resolved = sum(1 for c in first_seen if c not in handed_off)
    return {
        "window_days": days,
        "language": language,
        "totals": {
            "conversations": total,
            "resolved_by_bot": resolved,
            "handoffs": len(handed_off),
            "bot_resolution_rate": round(resolved / total, 3) if total else None,
        },
        "per_day": series,
        "per_language": {lang: dict(counts) for lang, counts in sorted(per_language.items())},
        "top_articles": top_articles,
    }
