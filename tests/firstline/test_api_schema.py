"""Schemathesis against the OpenAPI schema, authenticated: no 5xx and no schema violations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from firstline.main import create_app
from handoff.delivery import RasaClient
from kb_index.embedder import Embedder
from tests.app_fixtures import SAMPLE_ARTICLES, SERVICE, FakeRasa, LiveServer, make_settings

pytestmark = pytest.mark.slow

#: Operations only the bot may call; everything else is called as an admin.
BOT_OPERATIONS = {
    ("POST", "/api/handoffs"),
    ("POST", "/api/handoffs/{handoff_id}/user-messages"),
    ("POST", "/api/handoffs/{handoff_id}/rating"),
    ("POST", "/api/kb/feedback"),
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    directory = tmp_path_factory.mktemp("schemathesis")
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'f.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("schemathesis")
    app = create_app(
        make_settings(Path(directory) / "data", url, login_rate_limit=100_000, public_rate_limit=100_000),
        rasa=RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(FakeRasa().handler)),
        embedder=embedder,
    )
    with LiveServer(app) as live:
        app.state.kb.import_articles(SAMPLE_ARTICLES, "test")
        app.state.kb.refresh()
        token = httpx.post(
            f"{live.url}/api/auth/login", json={"email": "admin@example.com", "password": "firstline-dev"}
        ).json()["token"]
        yield live, {"Authorization": f"Bearer {token}"}


def checker(operation: Any, base_url: str, headers: dict[str, str]) -> Any:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        # Excluded: "schema-valid data must be accepted". Some rules are semantic and stricter
        # than a schema can say (a query of only spaces, an unknown language code); those
        # get a clear 4xx by design, which tests/kb_index checks word for word.
        case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=[positive_data_acceptance])

    return check


def test_no_server_errors_and_responses_match_the_schema(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, admin = server
    schema = (
        schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        # The event stream never ends, and logout would end the admin session mid-test.
        .exclude(path="/api/events")
        .exclude(path="/api/auth/logout")
    )
    failures: dict[str, str] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = SERVICE if (operation.method.upper(), operation.path) in BOT_OPERATIONS else admin
        try:
            checker(operation, live.url, headers)()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:2000]
        tested += 1
    assert tested >= 25
    assert failures == {}
