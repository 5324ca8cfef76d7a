"""The engine connection and the few backend functions Ibis does not name itself.

Everything heavy runs as Ibis expressions on embedded DuckDB by default. The builtin UDFs below map
one-to-one onto DuckDB functions; Ibis quotes their arguments, so no SQL is built from user values.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

TIMESTAMP = dt.Timestamp()
TIMESTAMP_UTC = dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="try_strptime")
def try_strptime(text: str, format: str) -> TIMESTAMP:
    """Parse ``text`` with strptime codes; NULL where it does not parse."""


@ibis.udf.scalar.builtin(name="timezone")
def wall_time_in_zone(zone: str, timestamp: TIMESTAMP) -> TIMESTAMP_UTC:
    """Read a naive wall-clock ``timestamp`` as local time in ``zone`` (an IANA name)."""


@ibis.udf.scalar.builtin(name="timezone")
def utc_wall_time(zone: str, timestamp: TIMESTAMP_UTC) -> TIMESTAMP:
    """The naive wall-clock time of an instant in ``zone`` (``'UTC'`` for canonical timestamps)."""


def connect() -> ibis.BaseBackend:
    """A fresh embedded DuckDB connection with session time zone UTC."""
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    return con
