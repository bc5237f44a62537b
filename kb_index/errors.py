"""Exceptions of the knowledge base; routes and the CLI translate them at the edge."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ArticleNotFound",
    "CorpusError",
    "EncoderError",
    "IndexNotReady",
    "KnowledgeBaseError",
    "Problem",
    "QueryError",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, and where: ``path:line`` or an article id."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class KnowledgeBaseError(Exception):
    """Base class of every knowledge-base error."""


class CorpusError(KnowledgeBaseError):
    """Articles failed validation; nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s):\n{shown}{more}")


class QueryError(KnowledgeBaseError, ValueError):
    """A search request that cannot be answered as asked (empty, too long, bad language)."""


class ArticleNotFound(KnowledgeBaseError, LookupError):
    """No article with that id."""


class EncoderError(KnowledgeBaseError):
    """The embedding model cannot be used: missing, corrupt, or not the one an index was built with."""


class IndexNotReady(KnowledgeBaseError):
    """No index has been built or loaded yet."""
