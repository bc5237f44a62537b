"""The shape of every error response, documented once for the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ProblemOut(BaseModel):
    where: str
    message: str


class ErrorOut(BaseModel):
    """``detail`` is a sentence, or for malformed requests a list of field errors."""

    detail: str | list[dict[str, Any]]
    problems: list[ProblemOut] | None = None


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Not logged in, or the session expired",
        403: "Your role does not allow this",
        404: "No such thing",
        409: "Not possible in its current state",
        422: "The request is malformed or invalid; nothing was changed",
        429: "Too many requests",
        503: "Not ready yet (the knowledge base is still being built)",
    }
    return {code: {"model": ErrorOut, "description": descriptions[code]} for code in codes}
