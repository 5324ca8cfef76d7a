"""The one error type for bad input.

Every data or parameter problem that the user can fix raises :class:`DataError`. It carries one or
more :class:`Problem` records, each naming the table, the column, how many rows are affected, one
example value and how to fix it, so that a message is useful without a traceback. The CLI prints
``str(error)`` and exits with code 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from userops_lib import i18n

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
    key
        For problems a report can show (raised while a notebook runs): the catalogue key of the message,
        ``error.<key>``, and of the fix, ``error.<key>.fix``, filled from ``values``, in the current
        language (``message`` and ``fix`` say the same in English, for the reader of the code). The frame
        ('table', 'rows', 'fix:') is in the catalogue for every problem.
    """

    table: str
    message: str
    fix: str
    column: str | None = None
    rows: int | None = None
    example: object = None
    key: str | None = None
    values: tuple[tuple[str, object], ...] = field(default=())

    def render(self) -> str:
        t = i18n.t
        if self.table in _TABLES:
            where = t("error.where.table", table=self.table)
            if self.column is not None:
                where += t("error.where.column", column=self.column)
        else:
            where = t("error.where.parameters") if self.table == "parameters" else self.table
            if self.column is not None:
                where += t("error.where.name", column=self.column)
        keyed = self.key is not None and i18n.has(f"error.{self.key}")
        values: dict[str, Any] = dict(self.values)
        message = t(f"error.{self.key}", **values) if keyed else self.message
        fix = t(f"error.{self.key}.fix", **values) if keyed and i18n.has(f"error.{self.key}.fix") else self.fix
        details = []
        if self.rows is not None:
            details.append(t("error.rows", n=self.rows, rows=f"{self.rows:,}"))
        if self.example is not None:
            details.append(t("error.example", example=_show(self.example)))
        head = t("error.problem", where=where, message=message)
        if details:
            head += t("error.details", details=t("error.separator").join(details))
        return f"{head}\n    {t('error.fix', fix=fix)}"


def problem_fields(**values: object) -> tuple[tuple[str, object], ...]:
    """The fields of a keyed :class:`Problem`'s message, as it holds them: ``values=problem_fields(column=name)``."""
    return tuple(values.items())


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
        head = i18n.t("error.count", n=len(self.problems), source=f" {self.source}" if self.source else "")
        return head + "\n" + "\n".join(f"  - {p.render()}" for p in self.problems)

    @classmethod
    def single(cls, table: str, message: str, fix: str, **details: Any) -> DataError:
        """Build an error holding one :class:`Problem`; ``values`` (a dict) fills a keyed message."""
        values: dict[str, Any] = details.pop("values", None) or {}
        return cls(Problem(table=table, message=message, fix=fix, values=tuple(values.items()), **details))


class Interrupted(BaseException):
    """A command was asked to stop (SIGTERM, SIGHUP): like Ctrl-C, the runner takes its jobs down with it."""


class RunWriteError(Exception):
    """A report run could not write its files (a full disk, a quota); what finished is kept in ``folder``."""

    def __init__(self, reason: str, folder: object):
        self.reason = reason
        self.folder = folder
        super().__init__(f"{reason}; the reports that finished are kept in {folder}")
