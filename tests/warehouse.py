"""A real PostgreSQL server for the engine matrix: found or started, a database of our own, datasets copied in.

The server is ``$USEROPS_TEST_POSTGRES`` (a URL) when set, else the one ``tests/postgres.sh`` starts (or
finds running) on this machine. Each test session works in a database of its own, dropped at the end, so
runs from two checkouts share a server without meeting. Tables are created with the column types a
warehouse would have (integers, doubles, timestamps, booleans, text) and filled by ``COPY`` (a
272k-row table in about a second; Ibis' ``create_table`` from a frame inserts row batches, ~50 s).
"""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
URL_ENV = "USEROPS_TEST_POSTGRES"


class NoServer(RuntimeError):
    """No PostgreSQL server is named and none can be started here."""


def server_url() -> str:
    """The server's URL (its maintenance database): named, or started by tests/postgres.sh."""
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    done = subprocess.run(["bash", str(ROOT / "tests" / "postgres.sh")], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise NoServer(done.stderr.strip() or f"tests/postgres.sh exited {done.returncode}")
    return done.stdout.strip().splitlines()[-1]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _connect(url: str):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres",
        autocommit=True,
    )


class Database:
    """A scratch database on the server: ``url`` for a dataset.yml, ``load`` to copy a frame in."""

    def __init__(self, server: str):
        self.server = server
        self.name = f"userops_test_{uuid.uuid4().hex[:12]}"
        with _connect(server) as con:
            con.execute(f"CREATE DATABASE \"{self.name}\" ENCODING 'UTF8' TEMPLATE template0")
        self.url = _with_database(server, self.name)
        self.datasets: list = []  # datasets read from it: what they keep is let go before the database is dropped

    def drop(self) -> None:
        with _connect(self.server) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def load(self, table: str, frame: pd.DataFrame) -> None:
        """``frame`` as a new table ``table``: typed columns, rows by COPY (missing values as NULL)."""
        columns = ", ".join(f'"{name}" {_sql_type(frame[name])}' for name in frame.columns)
        text = io.StringIO()
        frame.to_csv(text, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f")
        with _connect(self.url) as con:
            con.execute(f'CREATE TABLE "{table}" ({columns})')
            names = ", ".join(f'"{name}"' for name in frame.columns)
            with con.cursor().copy(f"COPY \"{table}\" ({names}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
                copy.write(text.getvalue())
            # Statistics as a warehouse has them (autovacuum would take a minute): without them the planner
            # guesses a few rows per filter and nests loops over 272k events (the strict funnel: minutes).
            con.execute(f'ANALYZE "{table}"')

    def dataset(self, source: Path, folder: Path, frames: dict[str, pd.DataFrame] | None = None) -> Path:
        """A copy of dataset ``source`` whose tables live in this database: each table's file (or the frame
        given for it) loaded, and a dataset.yml in ``folder`` naming the connection and tables instead of files."""
        manifest = yaml.safe_load((source / "dataset.yml").read_text(encoding="utf-8"))
        prefix = manifest.get("name", source.name)
        for role, spec in manifest["tables"].items():
            path = spec.pop("path")
            frame = (frames or {}).get(role)
            if frame is None:
                frame = pd.read_parquet(source / path) if path.endswith(".parquet") else pd.read_csv(source / path)
            table = f"{prefix}_{role}"
            self.load(table, frame)
            spec["table"] = table
        manifest["connection"] = self.url
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dataset.yml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        return folder


def _sql_type(column: pd.Series) -> str:
    kind = column.dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "bigint"
    if kind == "f":
        return "double precision"
    if kind == "M":
        return "timestamp"
    return "text"
