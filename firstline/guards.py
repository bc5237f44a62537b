"""Request guards in front of the routes: per-client rate limits, NUL-free URLs."""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class RateLimiter:
    """A sliding window of `limit` requests per `window` seconds per key."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """0 when allowed (and counted); otherwise how many seconds until it would be."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window - now
            hits.append(now)
            if len(self._hits) > 100_000:  # forget idle clients rather than grow without bound
                for idle in [k for k, v in self._hits.items() if not v]:
                    del self._hits[idle]
            return 0.0


class RateLimitMiddleware:
    """Applies limiters by method and path prefix per client address; the bot is exempt."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        rules: list[tuple[str, str, RateLimiter]],
        service_token: str,
    ) -> None:
        self.app = app
        self.rules = rules  # (method, path prefix, limiter)
        self._exempt = f"Bearer {service_token}"

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] == "http":
            request = Request(scope)
            for method, prefix, limiter in self.rules:
                if request.method == method and request.url.path.startswith(prefix):
                    if hmac.compare_digest(request.headers.get("authorization", ""), self._exempt):
                        break
                    client = request.client.host if request.client else "unknown"
                    wait = limiter.check(f"{prefix}:{client}")
                    if wait:
                        response: Response = JSONResponse(
                            {"detail": "too many requests; slow down"},
                            status_code=429,
                            headers={"Retry-After": str(int(wait) + 1)},
                        )
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


class RejectNulMiddleware:
    """A NUL character in a URL is never meant; refuse it before it reaches a database."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] == "http" and ("\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")):
            response = JSONResponse({"detail": "NUL characters are not allowed in URLs"}, status_code=422)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
