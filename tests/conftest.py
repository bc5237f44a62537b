"""Shared by both environments: the rule that CI may not skip for a missing system package.

Fixtures for the app environment live in tests/app_fixtures.py and load only there;
the bot environment (tests/actions) has none of firstline's dependencies (only its
standard-library `firstline.devservers`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from firstline.devservers import MissingBinaries, PostgresServer, start_postgres

#: `.ci/run` sets this: a test that would skip for a missing system package fails instead.
REQUIRE_SYSTEM_PACKAGES = os.environ.get("FIRSTLINE_REQUIRE_SYSTEM_PACKAGES") == "1"


def missing_system_package(reason: str) -> None:
    """Skips locally, fails in CI: the binaries must be there when .ci/run installed them."""
    if REQUIRE_SYSTEM_PACKAGES:
        pytest.fail(f"missing system package: {reason}", pytrace=False)
    pytest.skip(f"missing system package: {reason}")


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on a free port, from Debian's binaries."""
    try:
        server = start_postgres()
    except MissingBinaries as exc:
        missing_system_package(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()


if importlib.util.find_spec("rasa_sdk") is None:  # the app environment
    from tests.app_fixtures import *  # noqa: F403
