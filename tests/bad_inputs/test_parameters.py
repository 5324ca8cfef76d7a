"""Notebook parameters, CLI options and batch configs: refused with exit 2 before any kernel starts."""

from __future__ import annotations

import pytest

from tests.bad_inputs.corpus import run
from tests.conftest import DATA

SAMPLE = str(DATA / "sample")

PARAMETER_CASES = [
    ("snapshot_garbage", ["-p", "snapshot_at=garbage"], "'snapshot_at': not a date or time"),
    ("snapshot_before_data", ["-p", "snapshot_at=1990-01-01"], "before the data begins"),
    ("segment_by_unknown", ["-p", "segment_by=nosuch"], "no attribute 'nosuch' in the dataset"),
    ("cohort_by_unknown", ["--only", "cohort_retention", "-p", "cohort_by=nosuch"], "no attribute 'nosuch'"),
    ("covariates_unknown", ["-p", "covariates=channel,nosuch"], "no attribute 'nosuch'"),
    ("references_malformed", ["-p", "references=channel"], "not written as column=level"),
    ("campaign_unknown", ["-p", "campaign=nosuch"], "no campaign 'nosuch' in the assignments"),
    ("metrics_unknown", ["-p", "metrics=nosuch"], "no outcome 'nosuch'"),
    ("active_events_unknown", ["-p", "active_events=session,nosuch"], "no event named 'nosuch'"),
    ("start_event_unknown", ["--only", "cohort_retention", "-p", "start_event=nosuch"], "no event named 'nosuch'"),
    ("window_days_zero", ["-p", "window_days=0"], "'window_days' of notebook 'campaign_uplift' must be at least 1"),
    ("horizons_negative", ["-p", "horizons=-5"], "each value of 'horizons'"),
    ("max_levels_one", ["-p", "max_levels=1"], "must be at least 2"),
    ("high_share_one", ["-p", "high_share=1"], "must be less than 1"),
    ("shares_over_one", ["-p", "high_share=0.6", "-p", "mid_share=0.5"], "high_share + mid_share is more than 1"),
    ("share_nan", ["-p", "high_share=.nan"], "must be a finite number"),
    ("churn_before_dormant", ["-p", "churn_days=10"], "shorter than dormant_days"),
    ("period_not_a_choice", ["-p", "period=year"], "must be one of day, week, month"),
    ("int_given_text", ["-p", "top_values=many"], "'top_values' of notebook 'overview' must be int"),
    ("unknown_parameter", ["-p", "colour=red"], "unknown parameter 'colour'"),
    ("runner_parameter", ["-p", "artifacts_dir=/tmp"], "'artifacts_dir' is set by the runner"),
    ("dataset_as_parameter", ["-p", "dataset=data/hillstrom"], "give 'dataset' as the DATASET argument"),
    ("filter_column_alone", ["-p", "filter_column=channel"], "filter_column and filter_value go together"),
    ("filter_value_unmatched", ["-p", "filter_column=channel", "-p", "filter_value=nosuch"], "no user has channel"),
    ("filter_column_unknown", ["-p", "filter_column=nosuch", "-p", "filter_value=x"], "no attribute 'nosuch'"),
    ("only_unknown_notebook", ["--only", "nosuch"], "unknown notebook 'nosuch'"),
    ("purchase_event_unknown", ["--only", "customer_value", "-p", "purchase_event=refund"], "no event named 'refund'"),
    ("time_unit_month", ["--only", "customer_value", "-p", "time_unit=month"], "must be one of day, week"),
    (
        "purchase_event_with_a_bar",
        ["--only", "customer_value", "-p", "purchase_event=purchase|session"],
        "'a|b' alternatives are for funnel steps",
    ),
    ("timezone_unknown", ["--timezone", "Beijing"], "'Beijing' is not a time zone"),
    ("timezone_parameter_unknown", ["-p", "timezone=Mars/Base"], "'Mars/Base' is not a time zone"),
    (
        "discount_negative",
        ["-p", "discount_rate=-0.1"],
        "'discount_rate' of notebook 'customer_value' must be at least 0",
    ),
    # Checks that ran only inside the kernel, after ~40 s, with exit 1 (each rule now lives on its Params field or
    # in its Params' checks, which the runner runs before any kernel).
    ("holdout_negative", ["--only", "customer_value", "-p", "holdout_days=-5"], "must be at least 0"),
    ("funnel_one_step", ["--only", "funnel", "-p", "steps=signup"], "a funnel needs at least two steps"),
    (
        "exclusion_outside",
        ["--only", "funnel", "-p", "steps=signup,purchase", "-p", "exclude_events=session@2-3"],
        "outside the funnel's 1 to 2",
    ),
    (
        "split_per_arm",
        ["--only", "campaign_uplift", "-p", "expected_split=1,1"],
        "expected_split has 2 shares for 3 arms",
    ),
    (
        "metric_ratio_of_three",
        ["--only", "campaign_uplift", "-p", "metrics=revenue/converted/active_days"],
        "a ratio has two outcomes",
    ),
    # reference_group=nosuch was accepted, and the largest group silently compared against instead
    (
        "reference_group_unknown",
        ["--only", "cohort_retention", "-p", "cohort_by=channel", "-p", "reference_group=nosuch"],
        "no group 'nosuch' in channel",
    ),
    ("reference_group_alone", ["--only", "funnel", "-p", "reference_group=organic"], "names a group of breakdown"),
    (
        "reference_group_funnel",
        ["--only", "funnel", "-p", "breakdown=platform", "-p", "reference_group=organic"],
        "no group 'organic' in platform",
    ),
    # ... and said in the run's language
    ("holdout_negative_zh", ["--lang", "zh", "--only", "customer_value", "-p", "holdout_days=-5"], "须不小于 0"),
    ("funnel_one_step_zh", ["--lang", "zh", "--only", "funnel", "-p", "steps=signup"], "漏斗至少需要两个步骤"),
    (
        "split_per_arm_zh",
        ["--lang", "zh", "--only", "campaign_uplift", "-p", "expected_split=1,1"],
        "给出 2 个比例，但共有 3 个分组",
    ),
    (
        "reference_group_zh",
        ["--lang", "zh", "--only", "cohort_retention", "-p", "cohort_by=channel", "-p", "reference_group=nosuch"],
        "channel 中没有分组“nosuch”",
    ),
    ("unknown_parameter_zh", ["--lang", "zh", "-p", "colour=red"], "未知参数“colour”"),
    ("period_zh", ["--lang", "zh", "-p", "period=year"], "须为以下之一：day, week, month"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "says"), [pytest.param(a, s, id=i) for i, a, s in PARAMETER_CASES])
def test_a_bad_parameter_exits_2_before_any_kernel(args, says, tmp_path, capsys):
    code, out, err = run(capsys, "report", SAMPLE, "--out", str(tmp_path / "reports"), *args)
    assert code == 2, err
    assert says in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()  # nothing started, nothing written


def test_a_documented_value_is_accepted(tmp_path):
    """frequency_basis=active_days was refused: the comment's bracketed text was glued onto the last choice."""
    from userops_lib import report

    plan = report.plan_run(dataset=SAMPLE, only=["segment_profiling"], parameters={"frequency_basis": "active_days"})
    assert plan.jobs[0].parameters["frequency_basis"] == "active_days"


OPTION_CASES = [
    ("jobs_zero", ["--jobs", "0"], "--jobs: must be above 0"),
    ("jobs_word", ["--jobs", "abc"], "--jobs: expected a whole number"),
    ("timeout_negative", ["--timeout-minutes", "-1"], "--timeout-minutes: must be above 0"),
    ("timeout_nan", ["--timeout-minutes", "nan"], "--timeout-minutes: must be above 0"),
    ("parameter_without_value", ["-p", "period"], "expected NAME=VALUE"),
    ("engine_unknown", ["--engine", "oracle"], "invalid choice: 'oracle'"),
]


@pytest.mark.parametrize(("args", "says"), [pytest.param(a, s, id=i) for i, a, s in OPTION_CASES])
def test_a_bad_option_exits_2_with_usage(args, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        run(capsys, "report", SAMPLE, "--out", str(tmp_path / "r"), *args)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_synth_refuses_a_non_empty_folder_and_keeps_its_files(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run(capsys, "synth", "--out", str(tmp_path), "--users", "20")
    assert code == 2 and "not empty" in err and "--force" in err
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_synth_writes_into_an_empty_folder_and_replaces_with_force(tmp_path, capsys):
    out = tmp_path / "world"
    out.mkdir()
    assert run(capsys, "synth", "--out", str(out), "--users", "20")[0] == 0
    assert run(capsys, "synth", "--out", str(out), "--users", "20")[0] == 2
    assert run(capsys, "synth", "--out", str(out), "--users", "20", "--force")[0] == 0
    assert (out / "dataset.yml").is_file()


CONFIG_CASES = [
    ("jobs_text", "jobs: abc\n", "'jobs': must be a whole number"),
    ("jobs_zero", "jobs: 0\n", "'jobs': must be a number >= 1"),
    ("timeout_negative", "timeout_minutes: -1\n", "'timeout_minutes': must be a number > 0"),
    ("out_number", "out: 123\n", "'out': must be text"),
    ("dataset_list", "dataset: [a, b]\n", "'dataset': must be text"),
    ("unknown_key", "job: 2\n", "unknown key 'job'"),
    ("duplicate_key", "jobs: 1\njobs: 2\n", "'jobs' appears twice"),
    ("alias", "parameters: &p {period: week}\nnotebooks: {overview: *p}\n", "alias"),
    ("grid_not_list", "grid: {filter_value: ios}\n", "'grid.filter_value': must be a list"),
    ("grid_empty_list", "grid: {filter_value: []}\n", "at least one entry"),
    ("parameters_list", "parameters: [period]\n", "'parameters': must be a mapping"),
    ("not_a_mapping", "- overview\n", "must be a mapping"),
    ("yaml_error", "parameters: {period: week\n", "not valid YAML"),
    ("parameter_wrong_type", "parameters: {top_values: many}\n", "must be int"),
    ("notebook_unknown", "notebooks: {nosuch: {}}\n", "unknown notebook 'nosuch'"),
    ("dataset_in_parameters", "parameters: {dataset: data/sample}\n", "not as a parameter"),
]


@pytest.mark.parametrize(("text", "says"), [pytest.param(t, s, id=i) for i, t, s in CONFIG_CASES])
def test_a_bad_config_exits_2(text, says, tmp_path, capsys):
    config = tmp_path / "batch.yml"
    config.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "report", SAMPLE, "--config", str(config), "--out", str(tmp_path / "r"))
    assert code == 2, err
    assert says in err, err


def test_a_config_that_is_a_folder_or_not_utf8_or_missing_exits_2(tmp_path, capsys):
    assert "is a folder, not a file" in run(capsys, "report", SAMPLE, "--config", str(tmp_path))[2]
    latin = tmp_path / "batch.yml"
    latin.write_bytes("parameters: {filter_value: K\xf6ln}\n".encode("latin-1"))
    code, _, err = run(capsys, "report", SAMPLE, "--config", str(latin))
    assert code == 2 and "is not UTF-8" in err
    code, _, err = run(capsys, "report", SAMPLE, "--config", str(tmp_path / "none.yml"))
    assert code == 2 and "does not exist" in err


def test_a_missing_database_file_is_refused_not_created(tmp_path, capsys):
    missing = tmp_path / "no" / "such.duckdb"
    code, out, err = run(capsys, "validate", f"duckdb:///{missing}")
    assert code == 2 and "no database file at" in err and "Traceback" not in err
    assert not missing.exists() and not missing.parent.exists()


def test_a_notebook_that_is_not_json_is_refused(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "broken.ipynb").write_text("{ this is not json", encoding="utf-8")
    code, out, err = run(capsys, "report", SAMPLE, "--notebooks", str(notebooks), "--out", str(tmp_path / "r"))
    assert code == 2 and "'broken.ipynb' is not a Jupyter notebook" in err and "Traceback" not in err


def test_a_notebook_named_twice_runs_once():
    from userops_lib import report

    plan = report.plan_run(dataset=SAMPLE, only=["overview", "overview"])
    assert [job.name for job in plan.jobs] == ["overview"]
