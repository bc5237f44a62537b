"""The actions' HTTP client of the firstline service (actions never import its code)."""

from __future__ import annotations

import os
from typing import Any

import httpx

#: The bot must answer within 2 s even when the service hangs.
DEFAULT_TIMEOUT = 2.0


class ServiceUnavailable(Exception):
    """The firstline service did not answer in time or answered with a server error."""


class Rejected(Exception):
    """The service refused the request (4xx); retrying the same request will not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class FirstlineClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(str(exc) or type(exc).__name__) from exc
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{response.status_code} from {path}")
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:200]
            raise Rejected(response.status_code, detail)
        if response.status_code == 204:
            return None
        return response.json()

    async def search(self, query: str, language: str, conversation_id: str) -> dict[str, Any]:
        return await self._request(
            "GET",
            "/api/kb/search",
            params={"q": query, "lang": language, "top_k": 3, "conversation_id": conversation_id},
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
    """Replaces the shared client (tests pass one built on an httpx.MockTransport)."""
    global _client
    _client = client


__all__: list[str] = ["FirstlineClient", "Rejected", "ServiceUnavailable", "get_client", "set_client"]
