"""Articles as files: Markdown with front matter and JSON Lines, both ways, validated.

A Markdown article looks like::

    ---
    id: password-reset-en
    language: en
    translation_group: password-reset
    title: Reset a forgotten password
    tags: [account, password]
    questions:
      - I forgot my password
    ---
    Body in Markdown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kb_index.errors import CorpusError, Problem

LANGUAGES = ("en", "lv", "ru")
STATUSES = ("draft", "published")
MAX_TITLE = 300
MAX_BODY = 100_000
MAX_QUESTIONS = 200


@dataclass
class Article:
    id: str
    language: str
    title: str
    body: str
    questions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    translation_group: str = ""
    status: str = "published"
    #: Where it came from, for error messages: "path:line" or "path".
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.translation_group:
            self.translation_group = self.id

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source")
        return data

    def content_hash(self) -> str:
        """Changes whenever anything a search could see changes."""
        payload = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


def _as_str_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    return None


def article_from_dict(data: Any, source: str) -> tuple[Article | None, list[Problem]]:
    """Builds an article from parsed front matter or a JSON line, or says what is wrong."""
    if not isinstance(data, dict):
        return None, [Problem(source, "expected an object with id, language, title, body")]
    problems: list[Problem] = []
    unknown = set(data) - {
        "id", "language", "title", "body", "questions", "tags",
        "translation_group", "status",
    }  # fmt: skip
    if unknown:
        problems.append(Problem(source, f"unknown field(s): {', '.join(sorted(unknown))}"))
    text_fields: dict[str, str] = {}
    for name in ("id", "language", "title", "body", "translation_group", "status"):
        value = data.get(name)
        if value is not None and not isinstance(value, (str, int)):
            problems.append(Problem(source, f"{name} must be a string"))
            value = None
        text_fields[name] = "" if value is None else str(value).strip()
    questions = _as_str_list(data.get("questions"))
    tags = _as_str_list(data.get("tags"))
    if questions is None:
        problems.append(Problem(source, "questions must be a list of strings"))
    if tags is None:
        problems.append(Problem(source, "tags must be a list of strings"))
    if problems:
        return None, problems
    article = Article(
        id=text_fields["id"],
        language=text_fields["language"],
        title=text_fields["title"],
        body=text_fields["body"],
        questions=questions or [],
        tags=tags or [],
        translation_group=text_fields["translation_group"],
        status=text_fields["status"] or "published",
        source=source,
    )
    return article, check_article(article)


def check_article(article: Article) -> list[Problem]:
    """Problems with one article on its own (see `check_corpus` for cross-article ones)."""
    where = article.source or article.id
    problems = []
    if not article.id:
        problems.append(Problem(where, "missing id"))
    elif not all(c.isalnum() or c in "-_." for c in article.id) or len(article.id) > 120:
        problems.append(Problem(where, f"id {article.id!r} may only hold letters, digits, - _ . (≤120)"))
    if article.language not in LANGUAGES:
        problems.append(
            Problem(
                where,
                f"unknown language {article.language!r}; use one of {', '.join(LANGUAGES)}",
            )
        )
    if not article.title:
        problems.append(Problem(where, "empty title"))
    elif len(article.title) > MAX_TITLE:
        problems.append(Problem(where, f"title longer than {MAX_TITLE} characters"))
    if not article.body:
        problems.append(Problem(where, "empty body"))
    elif len(article.body) > MAX_BODY:
        problems.append(Problem(where, f"body longer than {MAX_BODY} characters"))
    if len(article.questions) > MAX_QUESTIONS:
        problems.append(Problem(where, f"more than {MAX_QUESTIONS} example questions"))
    if article.status not in STATUSES:
        problems.append(Problem(where, f"status must be draft or published, not {article.status!r}"))
    return problems


def check_corpus(articles: Iterable[Article]) -> list[Problem]:
    """Problems between articles: duplicate ids, two translations in one language."""
    problems: list[Problem] = []
    by_id: dict[str, Article] = {}
    by_group: dict[tuple[str, str], Article] = {}
    for article in articles:
        where = article.source or article.id
        if article.id in by_id:
            first = by_id[article.id].source or article.id
            problems.append(Problem(where, f"duplicate id {article.id!r} (first at {first})"))
            continue
        by_id[article.id] = article
        key = (article.translation_group, article.language)
        if key in by_group:
            other = by_group[key]
            problems.append(
                Problem(
                    where,
                    f"translation group {article.translation_group!r} already has a "
                    f"{article.language} article ({other.id} at {other.source or other.id})",
                )
            )
        else:
            by_group[key] = article
    return problems


def parse_markdown(text: str, source: str) -> tuple[Article | None, list[Problem]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None, [Problem(f"{source}:1", "missing front matter: the file must start with ---")]
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return None, [Problem(f"{source}:1", "front matter is not closed with ---")]
    try:
        front = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(f"{source}:{line}", f"invalid front matter: {reason}")]
    if not isinstance(front, dict):
        return None, [Problem(f"{source}:2", "front matter must be a mapping")]
    if "body" in front:
        return None, [Problem(f"{source}:2", "body belongs below the front matter")]
    front["body"] = "\n".join(lines[end + 1 :]).strip()
    return article_from_dict(front, f"{source}:1")


def read_markdown_dir(root: Path) -> tuple[list[Article], list[Problem]]:
    articles: list[Article] = []
    problems: list[Problem] = []
    for path in sorted(root.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(source, "not UTF-8 text"))
            continue
        article, found = parse_markdown(text, source)
        problems.extend(found)
        if article is not None:
            articles.append(article)
    if not articles and not problems:
        problems.append(Problem(str(root), "no .md articles found"))
    return articles, problems


def read_jsonl(path: Path) -> tuple[list[Article], list[Problem]]:
    articles: list[Article] = []
    problems: list[Problem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return [], [Problem(str(path), "not UTF-8 text")]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(source, f"invalid JSON: {exc.msg}"))
            continue
        article, found = article_from_dict(data, source)
        problems.extend(found)
        if article is not None:
            articles.append(article)
    return articles, problems


def read_corpus(path: Path) -> list[Article]:
    """Reads a Markdown directory or a .jsonl file and validates it as a whole.

    Raises:
        CorpusError: listing every problem, each with its file and line.
    """
    if not path.exists():
        raise CorpusError([Problem(str(path), "no such file or directory")])
    if path.is_dir():
        articles, problems = read_markdown_dir(path)
    else:
        articles, problems = read_jsonl(path)
    problems.extend(check_corpus(articles))
    if problems:
        raise CorpusError(problems)
    return articles


def _front_matter(article: Article) -> str:
    data = article.to_dict()
    body = data.pop("body")
    front = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{front}---\n{body}\n"


def write_corpus(articles: Iterable[Article], path: Path) -> int:
    """Writes Markdown files under a directory (``<lang>/<id>.md``) or one .jsonl file."""
    items = sorted(articles, key=lambda a: (a.language, a.id))
    if path.suffix == ".jsonl":
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for article in items:
                out.write(json.dumps(article.to_dict(), ensure_ascii=False) + "\n")
        return len(items)
    for article in items:
        target = path / article.language / f"{article.id}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_front_matter(article), encoding="utf-8")
    return len(items)


def corpus_hash(articles: Iterable[Article]) -> str:
    digest = hashlib.sha256()
    for content in sorted(a.content_hash() for a in articles):
        digest.update(content.encode())
    return digest.hexdigest()
