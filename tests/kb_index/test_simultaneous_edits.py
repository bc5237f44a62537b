"""Editors, or several service workers, saving the same new article at the same moment."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from pathlib import Path

from firstline.db import Database, migrate
from kb_index.corpus import Article
from kb_index.embedder import Embedder
from kb_index.errors import CorpusError
from kb_index.service import KnowledgeBase
from tests.app_fixtures import simultaneously

WRITERS = 6
ROUNDS = 5


def test_simultaneous_saves_of_a_new_article_keep_every_revision(
    tmp_path: Path, database_url: str, embedder: Embedder
) -> None:
    database = Database(database_url)
    migrate(database.engine)
    # One knowledge base per writer, as each worker process of `firstline serve` has its own.
    bases = [KnowledgeBase(database, embedder, tmp_path / f"index-{n}") for n in range(WRITERS)]

    def writer(number: int, round_number: int) -> str:
        article = Article(
            id=f"printer-{round_number}",
            language="en",
            title="The printer is offline",
            body=f"Wording {number}: turn the printer off and on again.",
            questions=["my printer is offline"],
            # A group each, so that the translation-group lock does not line them up.
            translation_group=f"printer-{round_number}-{number}",
        )
        bases[number].save_article(article, f"editor-{number}@example.com")
        return "saved"

    outcomes = simultaneously(WRITERS, ROUNDS, writer)
    try:
        assert outcomes == [Counter(saved=WRITERS)] * ROUNDS
        with database.session() as session:
            for round_number in range(ROUNDS):
                history = bases[0].history(session, f"printer-{round_number}")
                assert [r.revision for r in history] == list(range(WRITERS, 0, -1))
                assert {r.author for r in history} == {f"editor-{n}@example.com" for n in range(WRITERS)}
                assert bases[0].get_row(session, f"printer-{round_number}").revision == WRITERS
    finally:
        for base in bases:
            base.stop()
        database.dispose()


def test_an_import_racing_a_new_article_imports_all_or_nothing(
    tmp_path: Path, database_url: str, embedder: Embedder
) -> None:
    database = Database(database_url)
    migrate(database.engine)
    kb = KnowledgeBase(database, embedder, tmp_path / "index")
    imported = [
        Article(id=f"article-{n}", language="en", title=f"Title {n}", body="Body.", questions=[f"question {n}"])
        for n in range(3)
    ]
    outcome: list[object] = []
    try:
        with database.session() as editor:
            # An editor's save of article-1, not yet committed when the import starts.
            kb._write(editor, dataclasses.replace(imported[1], body="The editor's body."), "editor")

            def run_import() -> None:
                try:
                    outcome.append(kb.import_articles(imported, "cli"))
                except CorpusError as error:
                    outcome.append(error)

            importer = threading.Thread(target=run_import)
            importer.start()
            importer.join(timeout=1)  # PostgreSQL: waits on article-1's key; SQLite: on the write lock
        importer.join(timeout=60)
        with database.session() as session:
            stored = {row.id: row.revision for row in kb.list_articles(session)}
        [result] = outcome
        if isinstance(result, CorpusError):  # the import's INSERT of article-1 was refused
            assert "nothing was imported" in str(result)
            assert stored == {"article-1": 1}
        else:  # the import came second and saw the editor's article
            assert result == {"created": 2, "updated": 1, "unchanged": 0, "deleted": 0}
            assert stored == {"article-0": 1, "article-1": 2, "article-2": 1}
        assert type(result) is (CorpusError if database_url.startswith("postgresql") else dict)
    finally:
        kb.stop()
        database.dispose()


def test_two_translations_saved_at_once_into_one_language_of_a_group_keep_one(
    tmp_path: Path, database_url: str, embedder: Embedder
) -> None:
    """A translation group holds one article per language, also when two editors race."""
    database = Database(database_url)
    migrate(database.engine)
    bases = [KnowledgeBase(database, embedder, tmp_path / f"index-{n}") for n in range(2)]

    def editor(number: int, round_number: int) -> str:
        article = Article(
            id=f"wifi-{round_number}-lv-{number}",
            language="lv",
            title="Wi-Fi birojā",
            body=f"Tulkojums {number}: pieslēdzieties tīklam Office.",
            questions=["kā pieslēgties wifi"],
            translation_group=f"wifi-{round_number}",
        )
        try:
            bases[number].save_article(article, f"editor-{number}@example.com")
        except CorpusError as error:
            return "refused" if "already has" in str(error) else str(error)
        return "saved"

    outcomes = simultaneously(2, ROUNDS, editor)
    try:
        assert outcomes == [Counter(saved=1, refused=1)] * ROUNDS
        with database.session() as session:
            groups = Counter((row.translation_group, row.language) for row in bases[0].list_articles(session))
        assert groups == Counter({(f"wifi-{n}", "lv"): 1 for n in range(ROUNDS)})
    finally:
        for base in bases:
            base.stop()
        database.dispose()
