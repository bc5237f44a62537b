"""Fixtures of the action tests (bot environment)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from actions import client as client_module
from actions.client import FirstlineClient
from tests.actions.support import FakeService


@pytest.fixture
def service() -> Iterator[FakeService]:
    """Actions talk to this instead of the firstline service (faked at the transport)."""
    fake = FakeService()
    client_module.set_client(
        FirstlineClient("http://firstline.test", "svc-token", transport=httpx.MockTransport(fake.handler))
    )
    yield fake
    client_module.set_client(None)
