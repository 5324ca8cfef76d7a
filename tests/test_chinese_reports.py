"""Reports in Chinese, and Chinese data values in either language: no tofu, no English left, lang declared."""

import json
import re
import subprocess
import sys
import warnings

import nbformat
import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, write_dataset
from userops_lib import analyses, contract, fonts, i18n, plots, render
from userops_lib.analyses import overview
from userops_lib.data import load_dataset

pytestmark = pytest.mark.slow  # report runs in Chinese

CHANNELS = ["微信", "抖音", "应用商店"]
NOTEBOOKS = analyses.names()  # every registered analysis


@pytest.fixture(scope="module")
def chinese_dataset(tmp_path_factory):
    """60 days of a small product whose attribute values, campaign and arms are Chinese; half its users leave."""
    rng = np.random.default_rng(7)
    users, events, assignments = [], [], []
    for i in range(300):
        user = f"用户{i:03d}"
        signup = pd.Timestamp("2025-03-01") + pd.Timedelta(
            days=int(rng.integers(0, 50)), hours=int(rng.integers(0, 24))
        )
        users.append({"user_id": user, "signup_at": signup, "渠道": CHANNELS[i % 3]})
        stops = int(rng.integers(3, 30)) if rng.random() < 0.5 else 60  # half of them leave (churn) early
        for day in range(0, stops):
            if day == 0 or rng.random() < 0.3:
                at = signup + pd.Timedelta(days=day, minutes=int(rng.integers(0, 600)))
                if at < pd.Timestamp("2025-05-01"):
                    events.append(
                        {
                            "user_id": user,
                            "event_at": at,
                            "event": "打开",
                            "revenue": float(rng.choice([0, 0, 0, 6.0, 30.0])),
                        }
                    )
        assignments.append(
            {
                "user_id": user,
                "campaign": "双十一召回",
                "arm": ["对照组", "优惠券"][i % 2],
                "assigned_at": pd.Timestamp("2025-04-10"),
            }
        )
    folder = write_dataset(
        tmp_path_factory.mktemp("zh") / "中文数据",
        {
            "users.csv": pd.DataFrame(users),
            "events.csv": pd.DataFrame(events),
            "assignments.csv": pd.DataFrame(assignments),
        },
        {
            "name": "中文样例",
            "currency": "¥",
            "snapshot_at": "2025-05-01 00:00:00",
            "tables": {
                "users": {"path": "users.csv"},
                "events": {"path": "events.csv"},
                "assignments": {"path": "assignments.csv", "control_arm": "对照组"},
            },
        },
    )
    return folder


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_notebooks_parameters_cell_is_generated_from_its_params(name):
    cell = next(
        c
        for c in nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells
        if "parameters" in c.metadata.get("tags", [])
    )
    assert cell.source == contract.parameters_cell(analyses.get(name).Params)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_charts_draw_every_chinese_character(chinese_dataset, language):
    plots.apply_theme()
    result = overview.run(load_dataset(chinese_dataset), overview.Params())
    assert set(result.frames["attributes"].value) >= set(CHANNELS)
    with i18n.language(language), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts = result.charts()
        assert {"new_users", "active_users", "retention", "monetisation", "arms"} <= {c.name for c in charts}
        for chart in charts:
            ax = chart.draw()
            ax.figure.canvas.draw()  # glyphs are looked up when text is drawn
            labels = [t.get_text() for t in ax.get_yticklabels()] + [ax.get_title()]
            if chart.name == "arms":
                assert "双十一召回 · 对照组" in labels
            plots.plt.close(ax.figure)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []


def test_without_the_cjk_font_the_glyph_check_would_fail():
    """The check above can fail: DejaVu Sans alone has no 微."""
    plots.apply_theme()
    with warnings.catch_warnings(record=True) as caught, plots.plt.rc_context({"font.family": ["DejaVu Sans"]}):
        warnings.simplefilter("always")
        figure, ax = plots.plt.subplots()
        ax.set_title("微信")
        figure.canvas.draw()
        plots.plt.close(figure)
    assert any("missing from font" in str(w.message) for w in caught)


def test_a_page_embeds_exactly_the_cjk_characters_it_shows():
    page = render.page("标题 title", "<p>渠道 = 微信 &amp; $5 {x}</p>", language="en")
    assert "<html lang='en'>" in page and "@font-face" in page
    import base64
    import io
    import re

    from fontTools.ttLib import TTFont

    data = re.search(r"base64,([A-Za-z0-9+/=]+)\)", page).group(1)
    cmap = TTFont(io.BytesIO(base64.b64decode(data))).getBestCmap()
    assert {chr(c) for c in cmap if fonts.is_cjk(chr(c))} == set("标题渠道微信")
    with_footer = render.page("概览", "<p>微信</p>", language="zh")  # '由 userops 生成于' is on the page too
    cmap = TTFont(io.BytesIO(base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", with_footer).group(1))))
    assert {"由", "生", "微"} <= {chr(c) for c in cmap.getBestCmap()}
    assert "@font-face" not in render.page("title", "<p>plain</p>")


def _run(dataset, out, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "userops_lib.cli",
            "report",
            str(dataset),
            "--out",
            str(out),
            "--only",
            *NOTEBOOKS,
            "--jobs",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


@pytest.fixture(scope="module")
def zh_run(chinese_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("zh-reports")
    result = _run(chinese_dataset, out, "--lang", "zh")
    assert result.returncode == 0, result.stderr
    return (out / "latest").resolve()


def test_the_chinese_report_is_chinese(zh_run):
    page = (zh_run / "overview.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "@font-face" in page
    assert "<title>数据概览与核心指标</title>" in page
    for text in (
        "主要发现",
        "方法与数据",
        "周报：",  # the default period is a week
        "次日留存率",
        "微信",
        "对照组",
        "数据质量",
        "CSV 结果文件保留英文列名",
    ):
        assert text in page, text
    for english in (
        "Findings",
        "Method and data",
        "Definitions",
        "new users",
        "No rows were set aside",
        "Daily report",
    ):
        assert english not in page, english
    executed = (zh_run / "overview.ipynb").read_text(encoding="utf-8")
    assert "missing from font" not in executed
    index = (zh_run / "index.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in index and "userops 报告" in index and "成功" in index
    text = re.sub(r"base64,[^)]*", "", index)  # the embedded font's data is no text
    assert "表 events：读取" in text and "rows read" not in text and ">OK<" not in text
    # Files are an interface: English column names and English headlines beside the Chinese ones.
    assert pd.read_csv(zh_run / "overview" / "kpis.csv").columns[0] == "kpi"
    assert json.loads((zh_run / "overview" / "headline.json").read_text())[0][0] == "users"
    assert json.loads((zh_run / "overview" / "headline.zh.json").read_text(encoding="utf-8"))[0][0] == "用户数"


def test_the_chinese_cohort_report_is_chinese(zh_run):
    page = (zh_run / "cohort_retention.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "<title>同期群留存分析</title>" in page
    for text in ("主要发现", "第1周留存率为", "同期群尚未完成的周期单元格", "距同期群首周的周数", "置信区间"):
        assert text in page, text
    for english in ("Findings", "retention is", "Cohort", "since the cohort", "Definitions"):
        assert english not in page, english
    assert "missing from font" not in (zh_run / "cohort_retention.ipynb").read_text(encoding="utf-8")


def test_the_chinese_campaign_report_is_chinese(zh_run):
    page = (zh_run / "campaign_uplift.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "<title>活动提升分析</title>" in page
    for text in ("主要发现", "“优惠券”使转化变化", "健康检查：", "样本比例", "对照组“对照组”", "Qini 系数"):
        assert text in page, text
    for english in ("Findings", " moved ", "Health:", "sample ratio", "pass<", "arm · metric", "Definitions"):
        assert english not in page, english
    health = pd.read_csv(zh_run / "campaign_uplift" / "health.csv")  # an interface: data, never report text
    assert "detail" not in health.columns and health.check.iloc[0] == "sample ratio"


def test_the_chinese_segment_report_is_chinese(zh_run):
    page = (zh_run / "segment_profiling.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "<title>用户分层画像</title>" in page
    for text in ("主要发现", "当前生命周期分布：引入期", "RFM 分层：用户与收入", "建议动作", "渠道 最多取值", "微信"):
        assert text in page, text
    for english in ("Findings", "Lifecycle now", "Champions", "suggested action", "who they are", "top 渠道"):
        assert english not in page, english
    profile = pd.read_csv(zh_run / "segment_profiling" / "segment_profile.csv")  # an interface: English names
    assert "high" in set(profile.segment) and set(profile.segment) & {"new", "active", "mature", "dormant"}
    assert "suggested_action" not in profile.columns and "description" not in profile.columns  # words of the page


def test_the_chinese_churn_report_is_chinese(zh_run):
    page = (zh_run / "churn_survival.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "<title>流失生存分析</title>" in page
    for text in ("主要发现", "已流失", "删失", "全部用户", "流失中位时间", "Kaplan–Meier", "微信"):
        assert text in page, text
    for english in ("Findings", "churned", "censored", "all users", "Median time", "At risk", "Definitions"):
        assert english not in page, english
    assert "missing from font" not in (zh_run / "churn_survival.ipynb").read_text(encoding="utf-8")
    curves = pd.read_csv(zh_run / "churn_survival" / "median_survival.csv")  # an interface: English names
    assert "all users" in set(curves.segment)


def test_a_problem_in_the_input_reads_in_the_reports_language():
    """A report that fails on its input says so in the run's language, frame and message: the index of a zh
    run showed 'DataError: 1 problem in the input: table 'users': no user has churned'."""
    users = pd.DataFrame({"user_id": ["a", "b"], "duration": [3.0, 5.0], "churned": [False, False]})
    ds = load_dataset({"users": users}, columns={"users": {"duration": {"column": "duration", "unit": "months"}}})
    from userops_lib.analyses import churn_survival
    from userops_lib.errors import DataError

    with i18n.language("zh"), pytest.raises(DataError) as raised:
        churn_survival.run(ds, churn_survival.Params())
    assert str(raised.value) == (
        "输入中有 1 个问题：\n  - 表“users”：没有任何用户流失，无法估计生存曲线（2 行）\n"
        "    修复方法：检查流失标记或 churn_after_days 参数"
    )
    with pytest.raises(DataError) as english:
        churn_survival.run(ds, churn_survival.Params())
    assert "table 'users': no user has churned, so there is no survival curve to estimate (2 rows)" in str(
        english.value
    )
    failed = {"name": "churn_survival", "title": "流失生存分析", "status": "failed", "ipynb": "churn_survival.ipynb"}
    run = {"dataset_name": "样例", "dataset": "/d", "run_id": "r", "language": "zh"}
    page = render.index_html(run, [{**failed, "error_name": "DataError", "error_message": str(raised.value)}])
    assert "输入数据有问题：输入中有 1 个问题" in page and "DataError" not in page
    died = render.index_html(run, [{**failed, "error_name": "WorkerDied", "error_message": "x", "exit_code": -9}])
    assert "任务进程意外退出：任务进程在记录结果前以代码 -9 退出" in died


def test_the_chinese_funnel_report_is_chinese(zh_run):
    page = (zh_run / "funnel.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "<title>漏斗与转化分析</title>" in page
    for text in ("主要发现", "进入漏斗", "窗口期内", "Wilson", "分步转化率"):
        assert text in page, text
    for english in ("Findings", "users entered", "biggest drop", "Definitions", "in window"):
        assert english not in page, english
    assert "missing from font" not in (zh_run / "funnel.ipynb").read_text(encoding="utf-8")
    funnel = pd.read_csv(zh_run / "funnel" / "funnel.csv")  # an interface: English names
    assert list(funnel.columns[:4]) == ["group", "step", "event", "users"] and set(funnel.group) == {"all"}


def test_the_chinese_customer_value_report_is_chinese(zh_run):
    page = (zh_run / "customer_value.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "<title>客户价值</title>" in page
    customers = pd.read_csv(zh_run / "customer_value" / "customers.csv")  # an interface: English names
    assert customers.user_id.str.startswith("用户").all()
    alive = f"{customers.p_alive.sum():,.0f}"
    repeat = customers[customers.frequency > 0]
    first = f"{len(repeat):,} 位复购客户中，预计 {repeat.p_alive.sum():,.0f} 位"  # the repeat buyers lead
    for text in (
        first,
        f"全部 {len(customers):,} 位客户合计为 {alive} 位",
        "存活概率",
        "重要价值用户",
        "召回候选",
        "频次",
    ):
        assert text in page, text
    for english in ("Findings", "expected still active", "Definitions", "probably gone", "P(alive) by"):
        assert english not in page, english
    assert "missing from font" not in (zh_run / "customer_value.ipynb").read_text(encoding="utf-8")


def test_every_chinese_page_opens_with_its_bottom_line(zh_run):
    import re

    for page in sorted(p for p in zh_run.glob("*.html") if p.name != "index.html"):
        first = re.search(
            r"""<div class=["']userops-findings["']><h2>[^<]*</h2><ul><li>([^<]*)</li>""", page.read_text("utf-8")
        )
        assert first and first.group(1).startswith("结论："), page.name
