"""Knowledge base: articles, hybrid retrieval, calibrated decisions, its API and CLI."""

from kb_index.errors import (
    ArticleNotFound,
    CorpusError,
    IndexNotReady,
    KnowledgeBaseError,
    Problem,
    QueryError,
)

__all__ = [
    "ArticleNotFound",
    "CorpusError",
    "IndexNotReady",
    "KnowledgeBaseError",
    "Problem",
    "QueryError",
]
