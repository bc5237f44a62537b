"""Trackers and a faked firstline service for the action tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher


class FakeService:
    """The firstline service as the actions see it over HTTP; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[str, Callable[[httpx.Request], httpx.Response]] = {}
        self.down = False

    def on(self, method: str, path: str, response: Any, status: int = 200) -> None:
        self.routes[f"{method} {path}"] = lambda request: httpx.Response(status, json=response)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = json.loads(request.content) if request.content else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "params": dict(request.url.params),
                "json": body,
                "auth": request.headers.get("authorization"),
            }
        )
        route = self.routes.get(f"{request.method} {request.url.path}")
        if route is None:
            return httpx.Response(404, json={"detail": "no route"})
        return route(request)

    def sent(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path]


def user_event(
    text: str,
    intent: str,
    timestamp: float,
    entities: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "timestamp": timestamp,
        "metadata": metadata or {},
        "parse_data": {
            "intent": {"name": intent, "confidence": 1.0},
            "entities": entities or [],
            "text": text,
        },
    }


def bot_event(text: str, timestamp: float) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": timestamp, "data": {}}


def tracker(
    text: str = "",
    intent: str = "ask_question",
    slots: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    sender_id: str = "conv-42",
) -> Tracker:
    history = list(events or [])
    latest = user_event(text, intent, 1_700_000_100.0, entities, metadata)
    history.append(latest)
    return Tracker.from_dict(
        {
            "sender_id": sender_id,
            "slots": {"language": "en", **(slots or {})},
            "latest_message": {**latest["parse_data"], "metadata": metadata or {}, "message_id": "msg-1"},
            "events": history,
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def run(
    action: Any, current: Tracker, domain: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, current, domain or {}))
    return events, dispatcher


def slots_set(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
