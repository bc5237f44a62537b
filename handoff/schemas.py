"""Request and response bodies of the handoff API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from firstline.schemas import Input

Language = Literal["en", "lv", "ru"]
Priority = Literal["low", "normal", "high", "urgent"]
Role = Literal["agent", "editor", "admin"]
Status = Literal["queued", "assigned", "closed"]
AgentStatus = Literal["online", "away", "offline"]

Text = Annotated[str, Field(min_length=1, max_length=10_000)]
#: Row ids are 32-bit integers in both databases.
RowId = Annotated[int, Field(ge=1, le=2_147_483_647)]


class TranscriptLine(Input):
    role: Literal["user", "bot"]
    text: Annotated[str, Field(max_length=20_000)]
    timestamp: datetime


class ArticleTried(Input):
    article_id: Annotated[str, Field(max_length=120)]
    title: Annotated[str, Field(max_length=300)] = ""
    score: float = 0.0


class HandoffCreate(Input):
    conversation_id: Annotated[str, Field(min_length=1, max_length=200)]
    language: Language = "en"
    priority: Priority = "normal"
    contact: Annotated[str, Field(max_length=254)] = ""
    summary: Annotated[str, Field(max_length=2_000)] = ""
    transcript: Annotated[list[TranscriptLine], Field(max_length=5_000, default_factory=list)]
    articles_tried: Annotated[list[ArticleTried], Field(max_length=50, default_factory=list)]
    feedback: Annotated[str, Field(max_length=2_000)] = ""
    #: The bot sends one per handoff request, so retries never create two.
    idempotency_key: Annotated[str, Field(max_length=200)] | None = None

    @field_validator("transcript")
    @classmethod
    def _chronological(cls, lines: list[TranscriptLine]) -> list[TranscriptLine]:
        return sorted(lines, key=lambda line: line.timestamp)


class UserMessageIn(Input):
    text: Text
    #: Set by the bot; a retried request with the same id is stored once.
    client_id: Annotated[str, Field(max_length=200)] | None = None
    timestamp: datetime | None = None


class AgentMessageIn(Input):
    text: Text


class CloseIn(Input):
    note: Annotated[str, Field(max_length=5_000)] = ""


class TransferIn(Input):
    agent_id: RowId
    note: Annotated[str, Field(max_length=2_000)] = ""


class RatingIn(Input):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=2_000)] = ""


class LoginIn(Input):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=1_000)]


class AgentCreate(Input):
    email: EmailStr
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role = "agent"
    password: Annotated[str, Field(min_length=12, max_length=1_000)]
    languages: Annotated[list[Language], Field(min_length=1, default_factory=lambda: ["en"])]
    max_concurrent: Annotated[int, Field(ge=1, le=50)] = 5


class StatusIn(Input):
    status: AgentStatus


class AgentOut(BaseModel):
    id: int
    name: str
    email: str
    role: str
    languages: list[str]
    status: str
    max_concurrent: int


class AgentRef(BaseModel):
    id: int
    name: str


class AgentRefStatus(BaseModel):
    id: int
    name: str
    status: str
    languages: list[str]


class MessageOut(BaseModel):
    id: int
    role: str
    author: str
    text: str
    created_at: datetime
    delivery: str | None = None


class HandoffOut(BaseModel):
    id: int
    conversation_id: str
    status: str
    priority: str
    language: str
    contact: str
    summary: str
    bot_attempt: dict[str, Any]
    agent: AgentRef | None
    created_at: datetime
    updated_at: datetime
    claimed_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    sla_due_at: datetime
    resolution_note: str
    rating: int | None
    rating_comment: str
    queue_position: int | None = None


class HandoffDetail(HandoffOut):
    messages: list[MessageOut]


class HandoffCreated(HandoffOut):
    created: bool
    agents_online: int
    next_opening: datetime | None


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    agent: AgentOut
