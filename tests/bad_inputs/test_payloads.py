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

from tests.conftest import write_dataset

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
    assert {r["name"] for r in manifest["reports"]} == {
        "overview",
        "cohort_retention",
        "churn_survival",
        "segment_profiling",
        "campaign_uplift",
        "funnel",
        "customer_value",
    }
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
