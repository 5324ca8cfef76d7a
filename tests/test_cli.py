"""The userops command: exit codes, summaries and one-screen errors without tracebacks."""

import subprocess
import sys

import pytest

from tests.conftest import DATA, EVENTS_CSV, USERS_CSV
from userops_lib import cli

pytestmark = pytest.mark.slow  # the CLI in subprocesses


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "userops_lib.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        (
            "sample",
            [
                "table     users              10,000 rows",
                "snapshot  2026-01-01 00:00:00 UTC",
                "campaign  autumn_promo: control 1,231 · discount 1,287 · reminder 1,310",
            ],
        ),
        (
            "hillstrom",
            [
                "table     assignments        64,000 rows, 14 columns",
                "users     64,000",
                "campaign  hillstrom_2008: Mens E-Mail 21,307 · No E-Mail 21,306 (control) · Womens E-Mail 21,387",
            ],
        ),
        (
            "telco_churn",
            [
                "table     users               7,043 rows, 21 columns",
                "durations in months",
                "churned   1,869 of 7,043 users (26.5%)",
            ],
        ),
    ],
)
def test_validate_prints_the_summary_of_each_bundled_dataset(dataset, expected, capsys):
    assert cli.main(["validate", str(DATA / dataset)]) == 0
    out = capsys.readouterr().out
    for line in expected:
        assert line in out
    assert "set aside 0 rows" in out
    assert out.rstrip().endswith("valid")


def test_a_bad_folder_exits_2_with_every_problem_and_no_traceback(make_dataset):
    users = USERS_CSV.replace("user_id", "uid")
    events = EVENTS_CSV + "2,not a date,session,\n3,2024-01-04 10:00:00,purchase,-5\n"
    folder = make_dataset(
        {"users.csv": users, "events.csv": events},
        {"tables": {"users": {"path": "users.csv"}, "events": {"path": "events.csv"}}},
    )
    result = _run("validate", str(folder))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    text = result.stderr
    assert "no column maps to the required canonical column 'user_id'" in text
    assert "table 'events', column 'event_at': timestamps that do not parse" in text
    assert "example 'not a date'" in text
    assert "table 'events', column 'revenue': negative revenue (1 row; example -5.0)" in text
    assert len(text.splitlines()) <= 24


def test_a_missing_folder_exits_2(tmp_path):
    result = _run("validate", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no such dataset folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2():
    assert _run("validate").returncode == 2
    assert _run("frobnicate").returncode == 2


def test_synth_writes_a_dataset_and_validates(tmp_path, capsys):
    out = tmp_path / "world"
    assert cli.main(["synth", "--out", str(out), "--users", "200", "--seed", "5"]) == 0
    assert "200 users (seed 5)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "SOURCE.md",
        "assignments.parquet",
        "dataset.yml",
        "events.parquet",
        "truth.json",
        "truth_users.parquet",
        "users.parquet",
    ]
    assert cli.main(["validate", str(out)]) == 0


def test_synth_rejects_a_tiny_world(tmp_path, capsys):
    assert cli.main(["synth", "--out", str(tmp_path / "w"), "--users", "3"]) == 2
    assert "--users must be at least 10" in capsys.readouterr().err


def test_a_failed_synth_leaves_the_previous_world_untouched(tmp_path, monkeypatch):
    from userops_lib import synth_files as synth

    out = tmp_path / "world"
    synth.write_world(out, users=100, seed=1)
    before = (out / "events.parquet").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "_source_note", broken)
    with pytest.raises(RuntimeError):
        synth.write_world(out, users=100, seed=2, force=True)
    assert (out / "events.parquet").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["world"]
