"""Settings of the firstline service, read from FIRSTLINE_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Values that are fine on a developer's machine and refused in production.
DEVELOPMENT_SECRETS = {"dev-service-token", "dev-rasa-token", "dev-webhook-secret"}

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything the service can be configured with; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="FIRSTLINE_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default=REPO_ROOT / "data")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000

    # Knowledge base
    embedding_model: str = ""  # empty: the bundled all-MiniLM-L6-v2
    #: Development only: imported into an empty database at startup (empty: never).
    demo_corpus_dir: Path | None = Field(default=REPO_ROOT / "content" / "kb")
    #: Development only: labelled queries the demo corpus is tuned on at first start.
    demo_eval_dir: Path | None = Field(default=REPO_ROOT / "content" / "eval")

    # Who may call what
    service_token: SecretStr = SecretStr("dev-service-token")
    token_ttl_minutes: int = 12 * 60
    cors_origins: list[str] = []

    # Rasa, for delivering agent messages to the user's chat
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: SecretStr = SecretStr("dev-rasa-token")
    rasa_output_channel: str = "latest"
    #: The address the visitor's browser uses for Rasa's socket.io channel.
    public_socket_url: str = "http://127.0.0.1:5005"

    # Handoff queue
    #: Minutes until the first response is due, per priority.
    sla_minutes: dict[str, int] = {"urgent": 15, "high": 60, "normal": 240, "low": 1440}
    business_hours: str = "Mon-Fri 08:00-18:00"
    timezone: str = "Europe/Riga"
    #: Delete transcripts and contacts of handoffs closed more than this many days ago (0: keep).
    retention_days: int = 0

    # A ticketing system's webhook, told of every created and closed handoff
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("dev-webhook-secret")

    # Requests per minute per client address
    login_rate_limit: int = 10
    public_rate_limit: int = 120

    @field_validator("demo_corpus_dir", "demo_eval_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_default_secrets(self) -> Settings:
        if self.environment == "production":
            for name in ("service_token", "rasa_token", *(("webhook_secret",) if self.webhook_url else ())):
                value = getattr(self, name).get_secret_value()
                if value in DEVELOPMENT_SECRETS or len(value) < 16:
                    raise ValueError(
                        f"FIRSTLINE_{name.upper()} is a development placeholder; "
                        "set a random value of at least 16 characters in production"
                    )
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL in the form SQLAlchemy wants, psycopg 3 for PostgreSQL."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'firstline.db'}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def adapted_pointer(self) -> Path:
        """Names the model `firstline kb adapt` trained for this corpus, if any."""
        return self.data_dir / "models" / "ADAPTED"

    @property
    def effective_embedding_model(self) -> str:
        """FIRSTLINE_EMBEDDING_MODEL if set; else the corpus-adapted model; else the bundled one."""
        if self.embedding_model:
            return self.embedding_model
        if self.adapted_pointer.is_file():
            adapted = self.adapted_pointer.parent / self.adapted_pointer.read_text().strip()
            if (adapted / "modules.json").is_file():
                return str(adapted)
        return ""

    @property
    def is_development(self) -> bool:
        return self.environment == "development"
