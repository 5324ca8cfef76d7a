"""The report runner: layout, manifest, stakeholder HTML, failures, atomic output, concurrency, safety."""

import base64
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import DATA, ROOT, write_notebook
from userops_lib import provenance, report, runner

pytestmark = pytest.mark.slow  # report runs of the sample's notebooks

EVIL = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "userops_lib.cli", *args], capture_output=True, text=True, cwd=cwd)


class _Markup(HTMLParser):
    """Collects tags and attributes, to find live markup rather than escaped text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _markup(text: str) -> _Markup:
    parser = _Markup()
    parser.feed(text)
    return parser


def test_the_sample_run_produces_every_report_and_points_latest_at_it(sample_run):
    code, folder, out = sample_run
    assert code == 0
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert (out / "latest").resolve() == folder.resolve()
    for name in notebooks:
        assert (folder / f"{name}.html").is_file()
        assert (folder / f"{name}.ipynb").is_file()
        assert any((folder / name).glob("*.csv"))
    assert (folder / "index.html").is_file()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", folder.name)
    assert not list(out.glob(".running-*"))


def test_the_manifest_records_parameters_dataset_versions_and_status(sample_run):
    _, folder, _ = sample_run
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["dataset"] == str(DATA / "sample")
    assert manifest["dataset_fingerprint"]["sha256"] == provenance.fingerprint(str(DATA / "sample"))["sha256"]
    assert manifest["dataset_fingerprint"]["files"] == 7
    assert manifest["versions"]["papermill"] and manifest["versions"]["ibis-framework"]
    overview = next(r for r in manifest["reports"] if r["name"] == "overview")
    assert overview["status"] == "ok"
    assert overview["parameters"]["period"] == "week"
    assert "new_users.csv" in overview["artifacts"]
    assert manifest["started_at"] <= manifest["finished_at"]


def test_the_overview_artifacts_hold_the_kpis(sample_run):
    _, folder, _ = sample_run
    new_users = pd.read_csv(folder / "overview" / "new_users.csv")
    truth = json.loads((DATA / "sample" / "truth.json").read_text())
    assert new_users.new_users.sum() == truth["users"]
    active = pd.read_csv(folder / "overview" / "active_users.csv")
    assert list(active.columns[:3]) == ["day", "dau", "wau"]
    headline = json.loads((folder / "overview" / "headline.json").read_text())
    assert headline[0] == ["users", "10,000"]


def test_stakeholder_html_has_no_code_no_scripts_and_embedded_figures(sample_run):
    _, folder, _ = sample_run
    html = (folder / "overview.html").read_text()
    markup = _markup(html)
    tags = [t for t, _ in markup.tags]
    assert "script" not in tags
    assert "nb.setup()" not in html and "import " not in html and "injected-parameters" not in html
    assert "artifacts_dir: str" not in html
    images = [a["src"] for t, a in markup.tags if t == "img"]
    assert len(images) >= 4
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(a.get("href", "").startswith("http") for _, a in markup.tags)
    # Each chart has a text alternative: its title and axes, not nbconvert's placeholder.
    alts = [a.get("alt") or "" for t, a in markup.tags if t == "img"]
    assert all(alts) and "No description has been provided" not in html
    assert "Daily, weekly and monthly active users (x: day (UTC); y: active users (count))" in alts
    # Findings come first, the method-and-data section last.
    assert html.index("Findings") < html.index("<img")
    assert html.index("<img") < html.index("Method and data")
    assert "Data quality" in html and "No rows were set aside." in html


def test_the_index_lists_each_report_with_status_and_headlines(sample_run):
    _, folder, _ = sample_run
    html = (folder / "index.html").read_text()
    notebooks = len(list((ROOT / "notebooks").glob("*.ipynb")))
    assert f"{notebooks} of {notebooks} reports succeeded" in html
    assert "href='overview.html'" in html
    assert "10,000</strong> users" in html


def test_unknown_and_mistyped_parameters_exit_2_before_any_kernel(tmp_path):
    unknown = _cli("report", "-p", "no_such_param=1", "--out", str(tmp_path))
    assert unknown.returncode == 2
    assert "unknown parameter 'no_such_param'" in unknown.stderr
    mistyped = _cli("report", "-p", "top_values=many", "--out", str(tmp_path))
    assert mistyped.returncode == 2
    assert "'top_values' of notebook 'overview' must be int (example 'many')" in mistyped.stderr
    bad_dataset = _cli("report", str(tmp_path / "missing"), "--out", str(tmp_path))
    assert bad_dataset.returncode == 2
    assert "Traceback" not in unknown.stderr + mistyped.stderr + bad_dataset.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failing_notebook_is_isolated_and_not_published(tmp_path):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "good.ipynb", "print('fine')")
    write_notebook(notebooks / "bad.ipynb", "raise ValueError('boom <b>bold</b>')")
    out = tmp_path / "reports"
    result = _cli("report", "--notebooks", str(notebooks), "--out", str(out), "--jobs", "2")
    assert result.returncode == 1
    [folder] = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert (folder / "good.html").is_file()
    assert not (folder / "bad.html").exists()
    assert (folder / "bad.ipynb").is_file()  # kept, with the error, for debugging
    manifest = json.loads((folder / "manifest.json").read_text())
    bad = next(r for r in manifest["reports"] if r["name"] == "bad")
    assert (bad["status"], bad["error_name"]) == ("failed", "ValueError")
    assert "boom" in bad["error_message"]
    index = (folder / "index.html").read_text()
    assert "FAILED" in index and "ValueError: boom &lt;b&gt;bold&lt;/b&gt;" in index
    assert not (out / "latest").exists()  # a failed run never replaces a good one
    assert not list(out.glob(".running-*"))


def test_a_notebook_over_its_time_limit_is_stopped(tmp_path):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "slow.ipynb", "import time\ntime.sleep(120)")
    out = tmp_path / "reports"
    started = time.monotonic()
    result = _cli("report", "--notebooks", str(notebooks), "--out", str(out), "--timeout-minutes", "0.1")
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    [folder] = [p for p in out.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["reports"][0]["error_name"] == "Timeout"


def test_an_interrupted_run_leaves_no_partial_folder(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "quick.ipynb", "import time\ntime.sleep(30)")
    plan = report.plan_run(notebooks_dir=str(notebooks))
    calls = {"n": 0}

    def interrupt(seconds):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(plan, out=str(tmp_path / "reports"))
    assert list((tmp_path / "reports").iterdir()) == []


def test_two_runs_started_together_complete_into_separate_folders(tmp_path):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "quick.ipynb", "print('done')")
    out = tmp_path / "reports"
    args = [sys.executable, "-m", "userops_lib.cli", "report", "--notebooks", str(notebooks), "--out", str(out)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    runs = sorted(p for p in out.iterdir() if not p.name.startswith(".") and p.name != "latest")
    assert len(runs) == 2
    assert all((run / "quick.html").is_file() and (run / "manifest.json").is_file() for run in runs)
    assert (out / "latest").resolve() in [r.resolve() for r in runs]


def test_a_config_grid_makes_one_report_per_value(tmp_path):
    config = tmp_path / "batch.yml"
    config.write_text(
        f"dataset: {DATA / 'sample'}\nparameters:\n  filter_column: platform\n  period: month\n"
        "grid:\n  filter_value: [ios, web]\njobs: 2\n"
    )
    out = tmp_path / "reports"
    result = _cli("report", "--config", str(config), "--out", str(out), "--only", "overview")
    assert result.returncode == 0, result.stderr
    folder = (out / "latest").resolve()
    names = sorted(p.name for p in folder.glob("*.html"))
    assert names == ["index.html", "overview--filter_value-ios.html", "overview--filter_value-web.html"]
    truth = json.loads((DATA / "sample" / "truth.json").read_text())
    for platform in ("ios", "web"):
        new_users = pd.read_csv(folder / f"overview--filter_value-{platform}" / "new_users.csv")
        assert new_users.new_users.sum() == truth["realised"]["users_by"]["platform"][platform]
    html = (folder / "overview--filter_value-web.html").read_text()
    assert "Restricted to users with platform = web." in html


def test_a_grid_value_that_matches_no_user_exits_2(tmp_path):
    config = tmp_path / "batch.yml"
    config.write_text("parameters:\n  filter_column: platform\ngrid:\n  filter_value: [ios, blackberry]\n")
    result = _cli("report", "--config", str(config), "--out", str(tmp_path / "reports"))
    assert result.returncode == 2
    assert "no user has platform = 'blackberry'" in result.stderr


def test_strings_from_data_are_never_live_markup(tmp_path):
    from userops_lib.synth import make_world

    world = make_world(users=300, seed=3)
    users = world["users"].assign(channel=world["users"].channel.replace({"organic": EVIL[0], "social": EVIL[1]}))
    assignments = world["assignments"].assign(
        campaign=EVIL[1], arm=world["assignments"].arm.replace({"discount": EVIL[0]})
    )
    folder = tmp_path / "evil"
    folder.mkdir()
    users.to_parquet(folder / "users.parquet")
    world["events"].to_parquet(folder / "events.parquet")
    assignments.to_parquet(folder / "assignments.parquet")
    (folder / "dataset.yml").write_text(
        "name: <script>alert(1)</script>\ntables:\n  users: {path: users.parquet}\n  events: {path: events.parquet}\n"
        "  assignments: {path: assignments.parquet, control_arm: control}\n"
    )
    out = tmp_path / "reports"
    result = _cli("report", str(folder), "--out", str(out), "--only", "overview")
    assert result.returncode == 0, result.stderr
    run = (out / "latest").resolve()
    pages = list(run.glob("*.html"))
    assert len(pages) == 2
    shown = 0
    for page in pages:
        text = page.read_text()
        for evil in EVIL:
            assert evil not in text, page.name
        shown += text.count("&lt;script&gt;alert(1)&lt;/script&gt;")
        markup = _markup(text)
        assert "script" not in [t for t, _ in markup.tags], page.name
        assert not [a for _, attrs in markup.tags for a in attrs if a.startswith("on")], page.name
    assert shown >= 2  # the values were shown, escaped


def test_papermill_runs_a_notebook_directly_with_and_without_parameters(tmp_path):
    import papermill

    papermill.execute_notebook(
        str(ROOT / "notebooks" / "overview.ipynb"),
        str(tmp_path / "a.ipynb"),
        parameters={"period": "month"},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT),
    )
    # As in JupyterLab: defaults only, working directory notebooks/.
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "overview.ipynb"),
        str(tmp_path / "b.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT / "notebooks"),
    )
    assert (tmp_path / "b.ipynb").stat().st_size > 10_000


class _Stream:
    def __init__(self, tty: bool):
        self.text, self.tty = "", tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self.tty


def test_progress_is_plain_lines_off_a_terminal_and_a_status_line_on_one():
    plain = _Stream(tty=False)
    progress = runner._Progress(2, plain)
    progress.event("started a", 0, ["a"])
    progress.tick(0, ["a"])
    progress.event("finished a: OK in 3 s", 1, [])
    assert plain.text.splitlines() == ["[0/2 done, 00:00] started a", "[1/2 done, 00:00] finished a: OK in 3 s"]
    terminal = _Stream(tty=True)
    progress = runner._Progress(2, terminal)
    progress.event("started a", 0, ["a", "b"])
    assert terminal.text.endswith("\r\033[K[0/2 done, 00:00] running: a, b")


def test_no_report_shows_python_reprs(sample_run):
    _, folder, _ = sample_run
    for page in folder.glob("*.html"):
        text = page.read_text()
        assert "&lt;Axes" not in text and "<Figure size" not in text, page.name


def test_the_cohort_report_artifact_and_findings(sample_run):
    _, folder, _ = sample_run
    retention = pd.read_csv(folder / "cohort_retention" / "retention.csv")
    assert list(retention.columns) == [
        "cohort",
        "period",
        "cohort_size",
        "active_users",
        "retention",
        "ci_low",
        "ci_high",
    ]
    assert retention.retention.isna().any()  # recent cohorts have not reached late weeks
    average = pd.read_csv(folder / "cohort_retention" / "average.csv").set_index("period")
    html = (folder / "cohort_retention.html").read_text()
    assert f"Week 1 retention is {average.loc[1, 'retention'] * 100:.1f}%" in html
    assert html.index("Findings") < html.index("<img")


def test_the_cohort_report_on_a_real_log_reads_sensibly(cdnow, tmp_path):
    out = tmp_path / "reports"
    result = _cli("report", str(cdnow), "--only", "cohort_retention", "-p", "period=month", "--out", str(out))
    assert result.returncode == 0, result.stderr
    run = (out / "latest").resolve()
    html = (run / "cohort_retention.html").read_text()
    average = pd.read_csv(run / "cohort_retention" / "average.csv").set_index("period")
    assert f"Month 1 retention is {average.loc[1, 'retention'] * 100:.1f}%" in html
    assert "from 23,570 users in 3 cohorts that have reached it" in html
    assert "Revenue per cohort member adds up to $" in html


def test_notebooks_that_do_not_apply_to_a_dataset_are_skipped_or_refused():
    from userops_lib.errors import DataError

    plan = report.plan_run(dataset=str(DATA / "telco_churn"))
    ran = {job.name for job in plan.jobs}
    skipped = {s["name"]: s["reason"] for s in plan.skipped}
    assert ran == {"overview", "churn_survival"}
    assert skipped == {
        "cohort_retention": "needs events",
        "segment_profiling": "needs events",
        "campaign_uplift": "needs assignments",
        "funnel": "needs events",
        "customer_value": "needs events",
    }
    with pytest.raises(DataError, match="notebook 'cohort_retention' needs events"):
        report.plan_run(dataset=str(DATA / "hillstrom"), only=["cohort_retention"])


def test_with_several_workers_the_longest_notebook_of_the_last_run_starts_first(tmp_path):
    from userops_lib.report import Job
    from userops_lib.runner import _longest_first

    jobs = [Job(name, Path(f"{name}.ipynb"), name, {}) for name in ("overview", "cohorts", "segments", "new_one")]
    assert [j.name for j in _longest_first(jobs, tmp_path)] == ["overview", "cohorts", "segments", "new_one"]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text(
        json.dumps(
            {
                "reports": [
                    {"name": "overview", "seconds": 187.2},
                    {"name": "cohorts", "seconds": 67.4},
                    {"name": "segments", "seconds": 329.0},
                ]
            }
        )
    )
    (tmp_path / "latest").symlink_to("run")
    # Unknown durations first (they may be long), then the known ones, longest first.
    assert [j.name for j in _longest_first(jobs, tmp_path)] == ["new_one", "segments", "overview", "cohorts"]


def test_a_figures_text_alternative_is_escaped_into_the_page():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat

    from userops_lib import plots, render

    figure, ax = plt.subplots()
    plots.finish(ax, title="Spend of <b>'VIP'</b> users", xlabel="day", ylabel="spend ($)")
    alt = plots.describe(figure)
    assert alt == "Spend of <b>'VIP'</b> users (x: day; y: spend ($))"
    plt.close(figure)
    heat, ax = plt.subplots()  # a colour bar is said as the scale of its chart
    heat.colorbar(ax.imshow([[0.1, 0.2], [0.3, 0.4]]), ax=ax, label="retention (share)")
    plots.finish(ax, title="Retention by cohort", xlabel="weeks", ylabel="cohort")
    assert plots.describe(heat) == "Retention by cohort (x: weeks; y: cohort); colour: retention (share)"
    plt.close(heat)
    output = nbformat.v4.new_output(
        "display_data", data={"image/png": "iVBORw0KGgo=\n"}, metadata={"image/png": {"alt": alt}}
    )
    cell = nbformat.v4.new_code_cell("chart()", outputs=[output])
    html = render.notebook_html(nbformat.v4.new_notebook(cells=[cell]), title="t")
    markup = _markup(html)
    images = [a for t, a in markup.tags if t == "img"]
    assert images == [{"alt": alt, "src": "data:image/png;base64,iVBORw0KGgo="}]
    assert "b" not in [t for t, _ in markup.tags]  # the markup in the title stayed text


def test_every_page_opens_with_its_bottom_line(sample_run):
    """A stakeholder reads one sentence first: each page's first finding is its bottom line (a verdict for
    the campaign, what the numbers come to elsewhere), set in bold."""
    _, folder, _ = sample_run
    pages = sorted(p for p in folder.glob("*.html") if p.name != "index.html")
    assert len(pages) == 7
    for page in pages:
        first = re.search(
            r"""<div class=["']userops-findings["']><h2>[^<]*</h2><ul><li>([^<]*)</li>""", page.read_text()
        )
        assert first and first.group(1).startswith("Bottom line: "), page.name
    assert ".userops-findings li:first-child" in (ROOT / "userops_lib" / "templates" / "report.css").read_text()


def test_no_published_page_or_csv_names_the_machines_folders(sample_run):
    """Reports are forwarded: pages and CSVs name the dataset and its files, never the analyst's folders
    (the run's manifest keeps them); parameters read as text, not as Python ('', 'week')."""
    _, folder, out = sample_run
    published = [*folder.glob("*.html"), *folder.glob("*/*.csv")]
    assert len(published) > 20
    for path in published:
        text = path.read_text(encoding="utf-8")
        for machine in {str(ROOT), str(out), str(DATA)}:
            assert machine not in text, (path.name, machine)
    page = (folder / "overview.html").read_text(encoding="utf-8")
    parameters = page[page.index("<h3>Parameters</h3>") :].split("</table>")[0]
    assert "<td>sample</td>" in parameters and "<td>week</td>" in parameters and "(default)" in parameters
    assert "&#39;" not in parameters and "'" not in parameters.replace("class='userops-table'", "")
    assert "<td>events.parquet</td>" in page  # the data-quality table names files within the dataset
    assert "result.tables()" not in page and "Your analysis" not in page  # the analyst's cells stay out


def test_no_page_weighs_more_than_0_45_mb(sample_run, sample_run_zh):
    """Pages are mailed and opened on phones: each of the sample's pages, in English and in Chinese (whose
    pages carry a CJK font subset), stays under 0.45 MB (charts in a 256-colour palette)."""
    code, folder = sample_run_zh
    assert code == 0
    pages = [*sample_run[1].glob("*.html"), *folder.glob("*.html")]
    assert len(pages) == 8 + 3
    heavy = {page.parent.name + "/" + page.name: page.stat().st_size for page in pages}
    assert max(heavy.values()) < 0.45e6, heavy
