"""HTTP routes of the knowledge base: search for the bot and editing for editors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import insert, update

from firstline.deps import (
    CurrentEditor,
    KnowledgeBaseDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    is_service,
)
from firstline.errors import ProblemOut, documented
from firstline.schemas import Input
from kb_index import insights
from kb_index.corpus import Article
from kb_index.errors import ArticleNotFound
from kb_index.index import SearchResult
from kb_index.models import ArticleRevisionRow, ArticleRow, QueryLogRow

router = APIRouter(prefix="/api/kb", tags=["knowledge base"], responses=documented(401, 403, 404, 409, 422, 429, 503))

LanguageCode = Annotated[str, Query(min_length=2, max_length=8, description="en, lv or ru")]


class ResultOut(BaseModel):
    article_id: str
    title: str
    score: float
    language: str
    body: str
    dense: float
    lexical: float


class SearchOut(BaseModel):
    query: str
    language: str
    decision: Literal["answer", "clarify", "none"]
    confidence: float
    cross_language: bool
    results: list[ResultOut]
    took_ms: float
    index_version: str
    #: Set when the bot logged this search; send it back with the user's feedback.
    query_id: int | None = None


class FeedbackIn(Input):
    query_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    outcome: Literal["helped", "not_helped", "handed_off"]


class ArticleIn(Input):
    language: Literal["en", "lv", "ru"]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    body: Annotated[str, Field(min_length=1, max_length=100_000)]
    questions: Annotated[list[Annotated[str, Field(max_length=1_000)]], Field(max_length=200, default_factory=list)]
    tags: Annotated[list[Annotated[str, Field(max_length=60)]], Field(max_length=30, default_factory=list)]
    translation_group: Annotated[str, Field(max_length=120)] = ""
    status: Literal["draft", "published"] = "published"


class ArticleOut(ArticleIn):
    id: str
    revision: int
    updated_at: datetime
    updated_by: str


class RevisionOut(ArticleIn):
    revision: int
    created_at: datetime
    author: str


def search_out(result: SearchResult, query_id: int | None = None) -> SearchOut:
    return SearchOut(
        query=result.query,
        language=result.language,
        decision=result.decision,
        confidence=round(result.confidence, 4),
        cross_language=result.cross_language,
        results=[
            ResultOut(
                article_id=r.article.id,
                title=r.article.title,
                score=round(r.score, 4),
                language=r.article.language,
                body=r.article.body,
                dense=round(r.dense, 4),
                lexical=round(r.lexical, 4),
            )
            for r in result.results
        ],
        took_ms=round(result.took_ms, 2),
        index_version=result.index_version,
        query_id=query_id,
    )


def article_out(row: ArticleRow) -> ArticleOut:
    return ArticleOut(
        id=row.id,
        language=row.language,  # type: ignore[arg-type]
        title=row.title,
        body=row.body,
        questions=list(row.questions),
        tags=list(row.tags),
        translation_group=row.translation_group,
        status=row.status,  # type: ignore[arg-type]
        revision=row.revision,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


#: A Core INSERT ... RETURNING on the table: the ORM's unit of work for this one row took
#: ~15 % of the service's GIL time per search (py-spy, ten users asking back to back).
_QUERY_LOG = QueryLogRow.metadata.tables[QueryLogRow.__tablename__]
_LOG_SEARCH = insert(_QUERY_LOG).returning(_QUERY_LOG.c.id)


@router.get("/search", response_model=SearchOut)
def search(
    request: Request,
    kb: KnowledgeBaseDep,
    session: SessionDep,
    settings: SettingsDep,
    q: Annotated[str, Query(min_length=1, max_length=20_000, description="the user's question")],
    lang: LanguageCode = "en",
    top_k: Annotated[int, Query(ge=1, le=20)] = 5,
    conversation_id: Annotated[str | None, Query(max_length=200)] = None,
) -> SearchOut:
    """Search published articles; returns a decision (answer / clarify / none) and a ranking."""
    result = kb.search(q, lang, top_k)
    query_id = None
    if conversation_id and is_service(request, settings):
        top = result.results[0] if result.results else None
        query_id = session.execute(
            _LOG_SEARCH,
            {
                "conversation_id": conversation_id,
                "query": result.query[:2_000],
                "language": lang,
                "decision": result.decision,
                "article_id": top.article.id if top else None,
                "confidence": result.confidence,
            },
        ).scalar_one()
    return search_out(result, query_id)


@router.post("/feedback", status_code=status.HTTP_204_NO_CONTENT, dependencies=[ServiceCaller])
def feedback(body: FeedbackIn, session: SessionDep) -> None:
    """Record how a logged search ended: helped, not helped, or handed off."""
    session.execute(update(QueryLogRow).where(QueryLogRow.id == body.query_id).values(outcome=body.outcome))


@router.get("/status")
def index_status(kb: KnowledgeBaseDep) -> dict[str, Any]:
    """The manifest of the index being served."""
    if not kb.ready:
        return {"ready": False}
    return {"ready": True, **kb.index.manifest()}


@router.get("/published/{article_id}", response_model=ResultOut)
def published_article(article_id: str, kb: KnowledgeBaseDep) -> ResultOut:
    """One published article as the bot shows it (no login: this is public help content)."""
    article = kb.index.by_id.get(article_id)
    if article is None:
        raise ArticleNotFound(f"no published article {article_id!r}")
    return ResultOut(
        article_id=article.id, title=article.title, score=1.0, language=article.language,
        body=article.body, dense=1.0, lexical=1.0,
    )  # fmt: skip


@router.get("/articles", response_model=list[ArticleOut])
def list_articles(session: SessionDep, kb: KnowledgeBaseDep, editor: CurrentEditor) -> list[ArticleOut]:
    """All articles, drafts included."""
    return [article_out(r) for r in kb.list_articles(session)]


@router.get("/articles/{article_id}", response_model=ArticleOut)
def get_article(article_id: str, session: SessionDep, kb: KnowledgeBaseDep, editor: CurrentEditor) -> ArticleOut:
    """One article as it is now."""
    return article_out(kb.get_row(session, article_id))


@router.put("/articles/{article_id}", response_model=ArticleOut)
def put_article(article_id: str, body: ArticleIn, kb: KnowledgeBaseDep, editor: CurrentEditor) -> ArticleOut:
    """Create or update an article; a published one answers questions within seconds."""
    article = Article(id=article_id, **body.model_dump())
    return article_out(kb.save_article(article, editor.email))


@router.delete("/articles/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_article(article_id: str, kb: KnowledgeBaseDep, editor: CurrentEditor) -> None:
    """Delete an article and its history."""
    kb.delete_article(article_id)


@router.get("/articles/{article_id}/revisions", response_model=list[RevisionOut])
def revisions(article_id: str, session: SessionDep, kb: KnowledgeBaseDep, editor: CurrentEditor) -> list[RevisionOut]:
    """Every saved revision, newest first."""
    return [_revision_out(r) for r in kb.history(session, article_id)]


@router.post("/articles/{article_id}/revisions/{revision}/restore", response_model=ArticleOut)
def restore(
    article_id: str, revision: Annotated[int, Path(ge=1, le=2_147_483_647)], kb: KnowledgeBaseDep, editor: CurrentEditor
) -> ArticleOut:
    """Make an older revision current again (as a new revision)."""
    return article_out(kb.restore(article_id, revision, editor.email))


def _revision_out(row: ArticleRevisionRow) -> RevisionOut:
    return RevisionOut(
        language=row.language,  # type: ignore[arg-type]
        title=row.title,
        body=row.body,
        questions=list(row.questions),
        tags=list(row.tags),
        translation_group=row.translation_group,
        status=row.status,  # type: ignore[arg-type]
        revision=row.revision,
        created_at=row.created_at,
        author=row.author,
    )


class ValidateIn(ArticleIn):
    """Like an article, but empty fields are allowed: they are reported, not refused."""

    id: Annotated[str, Field(max_length=200)]
    title: Annotated[str, Field(max_length=300)] = ""
    body: Annotated[str, Field(max_length=100_000)] = ""


class ValidateOut(BaseModel):
    problems: list[ProblemOut]


@router.post("/validate", response_model=ValidateOut)
def validate_article(body: ValidateIn, session: SessionDep, kb: KnowledgeBaseDep, editor: CurrentEditor) -> ValidateOut:
    """Check an article as the editor types, without saving it."""
    data = body.model_dump()
    article = Article(id=data.pop("id"), **data)
    problems = [ProblemOut(where=p.where, message=p.message) for p in kb.problems(session, article)]
    return ValidateOut(problems=problems)


@router.get("/gaps")
def gaps(
    session: SessionDep,
    kb: KnowledgeBaseDep,
    editor: CurrentEditor,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    lang: Literal["en", "lv", "ru"] | None = None,
) -> list[dict[str, Any]]:
    """Questions the bot did not resolve, grouped by meaning, most frequent first."""
    return insights.content_gaps(session, kb.embedder, days, limit, lang, kb.background)


@router.get("/dashboard")
def dashboard(
    session: SessionDep,
    editor: CurrentEditor,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    lang: Literal["en", "lv", "ru"] | None = None,
) -> dict[str, Any]:
    """Conversations per day, share resolved by the bot, handoffs, CSAT, top articles, per language."""
    return insights.dashboard(session, days, lang)
