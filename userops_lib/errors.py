"""The one error type for bad input.

Every data or parameter problem that the user can fix raises :class:`DataError`. It carries one or
more :class:`Problem` records, each naming the table, the column, how many rows are affected, one
example value and how to fix it, so that a message is useful without a traceback. The CLI prints
``str(error)`` and exits with code 2.
"""

from __future__ import annotations

from dataclasses import dataclass

_TABLES = ("users", "events", "assignments")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    Parameters
    ----------
    table
        Canonical table (``users``, ``events``, ``assignments``) or ``dataset`` for manifest problems.
    message
        What is wrong, in one sentence.
    fix
        What the user should do about it.
    column
        The column concerned, as named in the source where that helps the user find it.
    rows
        How many rows are affected (``None`` when the problem is not about rows).
    example
        One offending value, shown with ``repr`` so that blanks and types are visible.
    """

    table: str
    message: str
    fix: str
    column: str | None = None
    rows: int | None = None
    example: object = None

    def render(self) -> str:
        if self.table in _TABLES:
            where = f"table '{self.table}'" + (f", column '{self.column}'" if self.column is not None else "")
        elif self.table == "parameters":
            where = "parameters" + (f", '{self.column}'" if self.column is not None else "")
        else:
            where = self.table + (f", '{self.column}'" if self.column is not None else "")
        head = f"{where}: {self.message}"
        details = []
        if self.rows is not None:
            details.append(f"{self.rows:,} row{'s' if self.rows != 1 else ''}")
        if self.example is not None:
            details.append(f"example {_show(self.example)}")
        if details:
            head += f" ({'; '.join(details)})"
        return f"{head}\n    fix: {self.fix}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class DataError(ValueError):
    """Bad input: a dataset, manifest or parameter the analysis cannot use as it is.

    Holds every problem found in one pass (``problems``), so that a user fixes them all at once.
    """

    def __init__(self, problems: Problem | list[Problem], *, source: str | None = None):
        self.problems: list[Problem] = [problems] if isinstance(problems, Problem) else list(problems)
        if not self.problems:
            raise ValueError("DataError needs at least one problem")
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the input"
        if self.source:
            head += f" {self.source}"
        return head + ":\n" + "\n".join(f"  - {p.render()}" for p in self.problems)

    @classmethod
    def single(cls, table: str, message: str, fix: str, **details: object) -> DataError:
        """Build an error holding one :class:`Problem`."""
        return cls(Problem(table=table, message=message, fix=fix, **details))


class Interrupted(BaseException):
    """A command was asked to stop (SIGTERM, SIGHUP): like Ctrl-C, the runner takes its jobs down with it."""


class RunWriteError(Exception):
    """A report run could not write its files (a full disk, a quota); what finished is kept in ``folder``."""

    def __init__(self, reason: str, folder: object):
        self.reason = reason
        self.folder = folder
        super().__init__(f"{reason}; the reports that finished are kept in {folder}")
