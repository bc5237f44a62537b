"""Builds the FastAPI application: routes, error translation, startup and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from firstline import __version__, web
from firstline.config import Settings
from firstline.db import Database, migrate
from firstline.guards import RateLimiter, RateLimitMiddleware, RejectNulMiddleware
from handoff import api as handoff_api
from handoff.delivery import OutboxWorker, RasaClient, WebhookClient
from handoff.errors import AuthError, Conflict, Forbidden, HandoffError, NotFound
from handoff.events import EventBus, LiveEvents
from handoff.retention import RetentionJob
from kb_index import api as kb_api
from kb_index.embedder import Embedder
from kb_index.errors import (
    ArticleNotFound,
    CorpusError,
    IndexNotReady,
    KnowledgeBaseError,
    QueryError,
)
from kb_index.service import KnowledgeBase

logger = logging.getLogger(__name__)

_STATUS: list[tuple[type[Exception], int]] = [
    (QueryError, 422),
    (CorpusError, 422),
    (ArticleNotFound, 404),
    (IndexNotReady, 503),
    (NotFound, 404),
    (Conflict, 409),
    (AuthError, 401),
    (Forbidden, 403),
]


def _error_response(exc: Exception) -> JSONResponse:
    code = next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)
    body: dict[str, object] = {"detail": str(exc).split("\n", 1)[0] if isinstance(exc, CorpusError) else str(exc)}
    if isinstance(exc, CorpusError):
        body["problems"] = [{"where": p.where, "message": p.message} for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse(body, status_code=code, headers=headers)


def create_app(
    settings: Settings | None = None,
    *,
    rasa: RasaClient | None = None,
    webhook: WebhookClient | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """The firstline service.

    Args:
        settings: defaults to reading FIRSTLINE_* from the environment.
        rasa: the client that delivers agent messages; tests pass one with a fake transport.
        webhook: the ticketing-system client (default: from FIRSTLINE_WEBHOOK_URL).
        embedder: share one loaded model between apps (tests).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.sqlalchemy_url)
        migrate(db.engine)
        bus = EventBus()
        live = LiveEvents(db, bus, _libpq_dsn(db) if db.is_postgres else None)
        live.start()
        kb = KnowledgeBase(
            db,
            embedder or Embedder(settings.effective_embedding_model, settings.data_dir / "embedding-cache.sqlite"),
            settings.index_dir,
        )
        kb.start()
        if settings.is_development:
            from firstline.bootstrap import ensure_demo_kb, ensure_dev_accounts

            ensure_dev_accounts(db)
            ensure_demo_kb(settings, db, kb)
        chat = rasa or RasaClient(
            settings.rasa_url, settings.rasa_token.get_secret_value(), settings.rasa_output_channel
        )
        hook = webhook or (
            WebhookClient(settings.webhook_url, settings.webhook_secret.get_secret_value())
            if settings.webhook_url
            else None
        )
        outbox = OutboxWorker(db, chat, hook)
        outbox.start()
        retention = RetentionJob(db, settings.retention_days)
        retention.start()
        app.state.settings, app.state.db, app.state.kb, app.state.outbox, app.state.bus = settings, db, kb, outbox, bus
        try:
            yield
        finally:
            retention.stop()
            outbox.stop()
            live.stop()
            kb.stop()
            if rasa is None:
                chat.close()
            if hook is not None and webhook is None:
                hook.close()
            db.dispose()

    app = FastAPI(
        title="firstline",
        version=__version__,
        summary="Knowledge-base search, the human handoff queue and the web pages of firstline.",
        lifespan=lifespan,
    )
    app.add_middleware(RejectNulMiddleware)
    app.add_middleware(
        RateLimitMiddleware,
        rules=[
            ("POST", "/api/auth/login", RateLimiter(settings.login_rate_limit)),
            ("GET", "/api/kb/search", RateLimiter(settings.public_rate_limit)),
            ("GET", "/api/kb/published/", RateLimiter(settings.public_rate_limit)),
        ],
        service_token=settings.service_token.get_secret_value(),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(KnowledgeBaseError)
    async def _kb_error(_: Request, exc: KnowledgeBaseError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(HandoffError)
    async def _handoff_error(_: Request, exc: HandoffError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(OperationalError)
    async def _database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        # The server restarted or is unreachable: nothing was committed, so the caller may retry.
        logger.warning("database unavailable: %s", str(exc.orig).split("\n", 1)[0])
        return JSONResponse(
            {"detail": "the database is unavailable; nothing was saved, try again"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default, minus the echoed input: a 1 MB body should not come back.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", tags=["service"])
    def health(request: Request) -> dict[str, object]:
        """Liveness and whether the knowledge base is ready."""
        return {"status": "ok", "kb_ready": request.app.state.kb.ready, "version": __version__}

    app.include_router(kb_api.router)
    app.include_router(handoff_api.router)
    app.include_router(handoff_api.prometheus_router)
    app.include_router(web.router)
    web.mount_static(app)
    return app


def _libpq_dsn(db: Database) -> str:
    """The engine's URL as libpq understands it (for the LISTEN connection)."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
