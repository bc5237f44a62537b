"""Throwaway PostgreSQL servers from Debian's binaries, for tests and benchmarks.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres``
user (created by Debian's package) in a temporary directory it owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class MissingBinaries(RuntimeError):
    """PostgreSQL's server binaries are not installed (apt-get install postgresql)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise MissingBinaries("PostgreSQL server binaries (apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    port: int
    directory: Path
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self) -> None:
        """Kills the server and starts it again: every client connection drops."""
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    f"{self.directory}/db",
                    "-l",
                    f"{self.directory}/pg.log",
                    "-m",
                    "immediate",
                    "-w",
                    "restart",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", f"{self.directory}/db", "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(max_connections: int = 300) -> PostgresServer:
    """Starts a new server on a free port; call ``stop()`` when done.

    Raises:
        MissingBinaries: PostgreSQL is not installed.
    """
    bin_dir = _bin_dir()
    directory = Path(tempfile.mkdtemp(prefix="firstline-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", f"{directory}/db", "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    # fsync off: throwaway data, and the benchmarks should measure our code, not the disk.
    options = f"-p {port} -k {directory} -c fsync=off -c max_connections={max_connections}"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                f"{directory}/db",
                "-l",
                f"{directory}/pg.log",
                "-w",
                "-o",
                options,
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    return PostgresServer(port, directory, bin_dir)
