"""Trackers and a faked firstline service for the action tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.client import get_client
from actions.outbox import Outbox
from firstline.devservers import free_port

T = TypeVar("T")


class FakeService:
    """The firstline service as the actions see it: a real HTTP server on a free local port,
    in a thread of its own, answering what a test told it to and recording every request.

    `down = True` stops it listening (connections are refused), `False` starts it again;
    `delay` makes every answer wait that many seconds first.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[str, tuple[int, Any]] = {}
        self.delay = 0.0
        self.port = free_port()
        self._down = True
        self._runner: web.AppRunner | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-service", daemon=True)
        self._thread.start()
        self.down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        if value != self._down:
            asyncio.run_coroutine_threadsafe(self._stop() if value else self._start(), self._loop).result(10)
            self._down = value

    def close(self) -> None:
        self.down = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # closes the listener and every open connection
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        content = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "params": dict(request.query),
                "json": json.loads(content) if content else None,
                "auth": request.headers.get("Authorization"),
            }
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = self.routes.get(f"{request.method} {request.path}", (404, {"detail": "no route"}))
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)

    def on(self, method: str, path: str, response: Any, status: int = 200) -> None:
        self.routes[f"{method} {path}"] = (status, response)

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


def _with_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Runs work on an event loop of its own, as the action server does, then closes the
    shared client's connections, which belong to that loop."""

    async def work_then_close() -> T:
        try:
            return await work
        finally:
            await get_client().aclose()

    return asyncio.run(work_then_close())


def run(
    action: Any, current: Tracker, domain: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], CollectingDispatcher]:
    """Runs an action as the action server does."""
    dispatcher = CollectingDispatcher()
    events: list[dict[str, Any]] = _with_own_loop(action.run(dispatcher, current, domain or {}))
    return events, dispatcher


def drain(outbox: Outbox) -> int:
    """Delivers what the outbox holds through the shared client, as its thread would."""
    return _with_own_loop(outbox.drain_once(get_client()))


def slots_set(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
