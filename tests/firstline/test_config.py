"""Settings: safe development defaults, refused placeholders in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from firstline.config import Settings


def test_plain_postgresql_urls_are_accepted() -> None:
    settings = Settings(database_url="postgresql://user:secret@db.example.com:5432/firstline")
    assert settings.sqlalchemy_url == "postgresql+psycopg://user:secret@db.example.com:5432/firstline"


def test_the_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).sqlalchemy_url == f"sqlite:///{tmp_path / 'firstline.db'}"


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError, match="FIRSTLINE_SERVICE_TOKEN is a development placeholder"):
        Settings(environment="production")
    Settings(environment="production", service_token="s" * 32, rasa_token="r" * 32)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIRSTLINE_EMBEDDING_MODEL", "/models/paraphrase-multilingual-MiniLM-L12-v2")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.embedding_model == "/models/paraphrase-multilingual-MiniLM-L12-v2"
