"""Fixtures of the action tests (bot environment)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actions import client as client_module
from actions import outbox as outbox_module
from actions.client import FirstlineClient
from actions.outbox import Outbox
from tests.actions.support import FakeService


@pytest.fixture
def service() -> Iterator[FakeService]:
    """Actions talk to this instead of the firstline service."""
    fake = FakeService()
    client_module.set_client(FirstlineClient(fake.url, "svc-token"))
    yield fake
    client_module.set_client(None)
    fake.close()


@pytest.fixture(autouse=True)
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    """Each test gets its own outbox file, and no delivery thread: tests drain it themselves."""
    box = Outbox(tmp_path / "bot-outbox.sqlite", autostart=False)
    outbox_module.set_outbox(box)
    yield box
    outbox_module.set_outbox(None)
