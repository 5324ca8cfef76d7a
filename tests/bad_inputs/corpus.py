"""The bad-input corpus: each case is a dataset folder (or a command) and what userops must say about it.

A case asserts the exit code, that the message names the problem (a fragment of it), that no traceback
reaches the user, and, for inputs that are valid however odd, that every row is accounted for
(rows read = rows kept + rows set aside, against a count made here from the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from userops_lib import cli

EVENTS = "user_id,event_at,event,revenue\n1,2024-01-01 10:00:00,session,\n2,2024-01-02 11:00:00,purchase,5\n"
USERS = "user_id,signup_at,channel\n1,2024-01-01 09:00:00,organic\n2,2024-01-02 10:00:00,paid\n"


@dataclass(frozen=True)
class Case:
    """One input: files (text or bytes; None makes a folder), an optional dataset.yml text, the expectations."""

    id: str
    files: dict
    manifest: str | None = None
    code: int = 2
    says: tuple[str, ...] = ()
    rows: dict = field(default_factory=dict)  # table -> (read, kept) when the input is valid
    users: int | None = None

    def param(self):
        return pytest.param(self, id=self.id)


def build(root: Path, case: Case) -> Path:
    folder = root / case.id
    folder.mkdir(parents=True)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.manifest is not None:
        (folder / "dataset.yml").write_text(case.manifest, encoding="utf-8")
    return folder


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``userops ARGS`` in this process: any exception escaping main() would be a traceback for the user."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check(case: Case, folder: Path, capsys) -> None:
    code, out, err = run(capsys, "validate", str(folder))
    text = out + err
    assert code == case.code, text
    assert "Traceback" not in text
    for fragment in case.says:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    if case.code == 0:
        from userops_lib.data import load_dataset

        ds = load_dataset(folder)
        summary = {t.name: (t.rows_read, t.rows_kept) for t in ds.quality.tables}
        for table, expected in case.rows.items():
            assert summary[table] == expected, summary
            aside = sum(s.rows for s in ds.quality.set_aside if s.table == table)
            assert summary[table][0] == summary[table][1] + aside  # nothing lost
        if case.users is not None:
            assert ds.quality.users == case.users
    else:
        assert len(err.splitlines()) <= 30  # one screen
