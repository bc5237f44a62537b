"""The actions' HTTP client of the firstline service (actions never import its code).

It runs on aiohttp, which Rasa already brings: an answered question costs the action
server one search request, and with ten users asking back to back httpx's async stack
took ~60 % of the action server's CPU (py-spy); aiohttp needs about a seventh of
httpx's CPU per request (measured with both against one local server).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp

#: The bot must answer within 2 s even when the service hangs.
DEFAULT_TIMEOUT = 2.0
#: Idle connections are dropped after this long, before uvicorn's keep-alive timeout
#: (5 s) closes them from the service's side while one is being reused.
KEEPALIVE_SECONDS = 2.0


class ServiceUnavailable(Exception):
    """The firstline service did not answer in time or answered with a server error."""


class Rejected(Exception):
    """The service refused the request (4xx); retrying the same request will not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class FirstlineClient:
    """Keeps one connection pool per event loop: an aiohttp session belongs to the loop it was made on."""

    def __init__(self, base_url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        """Closes this loop's connections (the session of a loop that has ended is dropped)."""
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._loop = None

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._session_here().request(method, self.base_url + path, **kwargs) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ServiceUnavailable(str(exc) or type(exc).__name__) from exc
        if status >= 500:
            raise ServiceUnavailable(f"{status} from {path}")
        if status >= 400:
            try:
                detail = str(json.loads(body).get("detail", ""))
            except (ValueError, AttributeError):
                detail = body[:200].decode("utf-8", "replace")
            raise Rejected(status, detail)
        if status == 204:
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ServiceUnavailable(f"{status} from {path} is not JSON") from exc

    async def search(self, query: str, language: str, conversation_id: str) -> dict[str, Any]:
        return await self._request(
            "GET",
            "/api/kb/search",
            params={"q": query, "lang": language, "top_k": "3", "conversation_id": conversation_id},
        )

    async def article(self, article_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/api/kb/published/{article_id}")

    async def feedback(self, query_id: int, outcome: str) -> None:
        await self._request("POST", "/api/kb/feedback", json={"query_id": query_id, "outcome": outcome})

    async def create_handoff(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", "/api/handoffs", json=payload)

    async def user_message(self, handoff_id: str, text: str, client_id: str, timestamp: float) -> None:
        await self._request(
            "POST",
            f"/api/handoffs/{handoff_id}/user-messages",
            json={"text": text, "client_id": client_id, "timestamp": timestamp},
        )

    async def rate(self, handoff_id: str, rating: int, comment: str = "") -> None:
        await self._request("POST", f"/api/handoffs/{handoff_id}/rating", json={"rating": rating, "comment": comment})


_client: FirstlineClient | None = None


def get_client() -> FirstlineClient:
    """The shared client, configured from the environment on first use."""
    global _client
    if _client is None:
        _client = FirstlineClient(
            os.environ.get("FIRSTLINE_URL", "http://127.0.0.1:8000"),
            os.environ.get("FIRSTLINE_SERVICE_TOKEN", "dev-service-token"),
        )
    return _client


def set_client(client: FirstlineClient | None) -> None:
    """Replaces the shared client (tests point one at a fake service)."""
    global _client
    _client = client


__all__: list[str] = ["FirstlineClient", "Rejected", "ServiceUnavailable", "get_client", "set_client"]
