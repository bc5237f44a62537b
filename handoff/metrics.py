"""Queue and service-quality figures for the consoles (JSON) and for Prometheus."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from firstline.db import utcnow
from handoff.models import PRIORITIES, HandoffRow
from kb_index.models import QueryLogRow


def _seconds(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p90": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "p50": round(ordered[len(ordered) // 2], 1),
        "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 1),
    }


def compute(session: Session, days: int = 30) -> dict[str, Any]:
    """Everything the dashboard shows, over the last `days` days (the queue is live)."""
    now = utcnow()
    since = now - timedelta(days=days)
    queue: dict[str, dict[str, Any]] = {p: {"queued": 0, "oldest_wait_seconds": 0.0} for p in PRIORITIES}
    rows = session.execute(
        select(HandoffRow.priority, func.count(), func.min(HandoffRow.created_at))
        .where(HandoffRow.status == "queued")
        .group_by(HandoffRow.priority)
    ).all()
    for priority, count, oldest in rows:
        queue[priority] = {
            "queued": int(count),
            "oldest_wait_seconds": round((now - _aware(oldest)).total_seconds(), 1),
        }
    assigned = session.scalar(select(func.count()).where(HandoffRow.status == "assigned")) or 0
    recent = session.execute(
        select(
            HandoffRow.created_at,
            HandoffRow.first_response_at,
            HandoffRow.closed_at,
            HandoffRow.sla_due_at,
            HandoffRow.rating,
            HandoffRow.status,
        ).where(HandoffRow.created_at >= since)
    ).all()
    first_response, resolution, ratings = [], [], []
    breached = breached_waiting = 0
    for created, responded, closed, due, rating, status in recent:
        created, due = _aware(created), _aware(due)
        if responded is not None:
            first_response.append((_aware(responded) - created).total_seconds())
            breached += _aware(responded) > due
        elif status != "closed" and now > due:
            breached += 1
            breached_waiting += 1
        if closed is not None:
            resolution.append((_aware(closed) - created).total_seconds())
        if rating is not None:
            ratings.append(int(rating))
    conversations = set(
        session.scalars(select(QueryLogRow.conversation_id).where(QueryLogRow.created_at >= since).distinct())
    )
    handed_off = set(
        session.scalars(select(HandoffRow.conversation_id).where(HandoffRow.created_at >= since).distinct())
    )
    with_bot = conversations | handed_off
    return {
        "window_days": days,
        "queue": queue,
        "queued": sum(q["queued"] for q in queue.values()),
        "assigned": int(assigned),
        "handoffs": len(recent),
        "first_response_seconds": _seconds(first_response),
        "resolution_seconds": _seconds(resolution),
        "sla_breaches": breached,
        "sla_breaches_waiting_now": breached_waiting,
        "csat": {
            "count": len(ratings),
            "average": round(statistics.fmean(ratings), 2) if ratings else None,
            "distribution": {str(score): ratings.count(score) for score in range(1, 6)},
        },
        "conversations": {
            "total": len(with_bot),
            "handed_off": len(handed_off),
            "resolved_by_bot": len(conversations - handed_off),
            "bot_resolution_rate": round(len(conversations - handed_off) / len(with_bot), 3) if with_bot else None,
        },
    }


def _aware(value: Any) -> Any:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def prometheus_families(snapshot: dict[str, Any]) -> Iterator[Any]:
    """The same figures as Prometheus metric families (gauges)."""
    from prometheus_client.core import GaugeMetricFamily

    queued = GaugeMetricFamily("firstline_queue_length", "Handoffs waiting in the queue", labels=["priority"])
    oldest = GaugeMetricFamily(
        "firstline_queue_oldest_wait_seconds", "Wait of the oldest queued handoff", labels=["priority"]
    )
    for priority, values in snapshot["queue"].items():
        queued.add_metric([priority], values["queued"])
        oldest.add_metric([priority], values["oldest_wait_seconds"])
    yield queued
    yield oldest
    yield GaugeMetricFamily(
        "firstline_handoffs_assigned", "Handoffs an agent is working on", value=snapshot["assigned"]
    )
    for name, key in (("first_response", "first_response_seconds"), ("resolution", "resolution_seconds")):
        family = GaugeMetricFamily(
            f"firstline_{name}_seconds", f"{name.replace('_', ' ').capitalize()} time", labels=["stat"]
        )
        for stat in ("mean", "p50", "p90"):
            if snapshot[key][stat] is not None:
                family.add_metric([stat], snapshot[key][stat])
        yield family
    yield GaugeMetricFamily("firstline_sla_breaches", "Handoffs past their SLA", value=snapshot["sla_breaches"])
    csat = snapshot["csat"]
    yield GaugeMetricFamily("firstline_csat_ratings", "Ratings received", value=csat["count"])
    if csat["average"] is not None:
        yield GaugeMetricFamily("firstline_csat_average", "Average rating (1-5)", value=csat["average"])
    conversations = GaugeMetricFamily(
        "firstline_conversations", "Conversations with the bot, by outcome", labels=["outcome"]
    )
    conversations.add_metric(["handed_off"], snapshot["conversations"]["handed_off"])
    conversations.add_metric(["resolved_by_bot"], snapshot["conversations"]["resolved_by_bot"])
    yield conversations
