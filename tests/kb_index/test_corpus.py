"""Articles as files: parsing, validation with file and line, export and import both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_index.corpus import read_corpus, write_corpus
from kb_index.errors import CorpusError
from tests.app_fixtures import REPO, SAMPLE_ARTICLES

ARTICLE = """---
id: vpn-en
language: en
translation_group: vpn
title: Connect to the VPN
tags: [vpn, remote]
questions:
  - vpn from home
---
Open **GlobalProtect**.
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(CorpusError) as caught:
        read_corpus(path)
    return [str(p) for p in caught.value.problems]


def test_the_demo_corpus_is_valid_and_complete_in_three_languages() -> None:
    articles = read_corpus(REPO / "content" / "kb")
    by_language: dict[str, set[str]] = {}
    for article in articles:
        by_language.setdefault(article.language, set()).add(article.translation_group)
        assert len(article.questions) >= 5, article.id
        assert len(article.body.split()) >= 80, article.id
    assert len(by_language["en"]) >= 30
    assert by_language["en"] == by_language["lv"] == by_language["ru"]


def test_a_markdown_article_is_read_with_its_front_matter(tmp_path: Path) -> None:
    write(tmp_path, "en/vpn.md", ARTICLE)
    (article,) = read_corpus(tmp_path)
    assert (article.id, article.language, article.translation_group) == ("vpn-en", "en", "vpn")
    assert article.tags == ["vpn", "remote"] and article.questions == ["vpn from home"]
    assert article.body == "Open **GlobalProtect**."


def test_problems_name_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a.md", ARTICLE)
    write(tmp_path, "b.md", ARTICLE)  # same id
    write(tmp_path, "c.md", ARTICLE.replace("id: vpn-en", "id: vpn-de").replace("language: en", "language: de"))
    write(tmp_path, "d.md", ARTICLE.replace("id: vpn-en", "id: empty").replace("Open **GlobalProtect**.", ""))
    write(tmp_path, "e.md", "no front matter here")
    write(tmp_path, "f.md", "---\nid: [unclosed\n---\nbody")
    write(tmp_path, "g.md", ARTICLE.replace("id: vpn-en", "id: vpn-en-2"))  # second en article in group vpn
    problems = problems_of(tmp_path)
    assert f"{tmp_path}/b.md:1: duplicate id 'vpn-en' (first at {tmp_path}/a.md:1)" in problems
    assert any(p.startswith(f"{tmp_path}/c.md:1: unknown language 'de'") for p in problems)
    assert f"{tmp_path}/d.md:1: empty body" in problems
    assert any(p.startswith(f"{tmp_path}/e.md:1: missing front matter") for p in problems)
    assert any(p.startswith(f"{tmp_path}/f.md:2: invalid front matter") for p in problems)
    assert any(p.startswith(f"{tmp_path}/g.md:1: translation group 'vpn' already has a en article") for p in problems)


def test_jsonl_problems_name_the_line(tmp_path: Path) -> None:
    good = {"id": "a", "language": "en", "title": "A", "body": "b", "questions": [], "tags": []}
    path = tmp_path / "kb.jsonl"
    path.write_text(
        json.dumps(good) + "\n" + "{broken\n" + json.dumps({**good, "id": "b", "questions": "not a list"}) + "\n",
        encoding="utf-8",
    )
    problems = problems_of(path)
    assert any(p.startswith(f"{path}:2: invalid JSON") for p in problems)
    assert f"{path}:3: questions must be a list of strings" in problems


@pytest.mark.parametrize("suffix", ["dir", "kb.jsonl"])
def test_export_then_import_gives_the_same_corpus(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / suffix
    write_corpus(SAMPLE_ARTICLES, target)
    again = read_corpus(target)
    assert sorted(a.to_dict()["id"] for a in again) == sorted(a.id for a in SAMPLE_ARTICLES)
    assert {a.id: a.to_dict() for a in again} == {a.id: a.to_dict() for a in SAMPLE_ARTICLES}
