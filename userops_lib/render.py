"""Executed notebooks to stakeholder HTML, and the run's index page.

Reports are self-contained pages: no code, no prompts, no scripts, figures embedded as PNG, one
style sheet inline. Every string that comes from data is escaped before it reaches a page.
"""

from __future__ import annotations

import copy
import datetime as dt

import nbformat
from nbconvert import HTMLExporter

from userops_lib import fonts, i18n
from userops_lib.narrative import escape

# Parameter cells, and notes for analysts in JupyterLab (the report says the same from the catalogue).
HIDDEN_TAGS = {"parameters", "injected-parameters", "analyst-only"}

STYLE = """
body{font-family:'userops CJK',-apple-system,"Segoe UI",Roboto,Helvetica,Arial,"PingFang SC","Microsoft YaHei",
sans-serif;color:#222;max-width:1000px;
margin:0 auto;padding:24px 28px 60px;line-height:1.5;background:#fff}
h1{font-size:1.9em;margin:.2em 0 .3em}h2{font-size:1.35em;margin-top:1.6em;border-bottom:1px solid #e3e3e3;
padding-bottom:.2em}h3{font-size:1.1em;margin-top:1.2em}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
table.userops-table,table.dataframe{border-collapse:collapse;font-size:.9em;margin:.6em 0;display:block;
overflow-x:auto;max-width:100%}
.userops-table th,.userops-table td,.dataframe th,.dataframe td{border-bottom:1px solid #e6e6e6;padding:4px 10px;
text-align:right}.userops-table th:first-child,.userops-table td:first-child{text-align:left}
.userops-findings{background:#f5f8fc;border-left:4px solid #2a6fb0;padding:6px 18px 10px;margin:1em 0}
.userops-findings h2{border:none;margin-top:.4em}.userops-findings li{margin:.35em 0}
.userops-tiles{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0}
.userops-tile{border:1px solid #dde3ea;border-radius:6px;padding:8px 14px;min-width:130px}
.userops-tile .value{font-size:1.5em;font-weight:600}.userops-tile .label{color:#666;font-size:.85em}
.userops-card{min-width:190px;max-width:240px}.userops-card .note{color:#555;font-size:.8em}
.userops-note,.userops-caption{color:#555;font-size:.92em}
.userops-details{margin-top:2.5em;font-size:.92em;color:#333}
.status-ok{color:#1d7a32;font-weight:600}.status-failed{color:#b3261e;font-weight:600}
.error{font-family:monospace;white-space:pre-wrap;color:#b3261e}
pre{white-space:pre-wrap}footer{margin-top:3em;color:#777;font-size:.85em}
"""


def page(title: str, body: str, *, subtitle: str = "", language: str = i18n.DEFAULT) -> str:
    """A complete, self-contained HTML page in ``language`` (``title`` and ``subtitle`` are escaped here).

    A page with CJK characters (Chinese text, or data values such as 微信 in an English report) embeds
    the subset of the CJK font it needs (:mod:`fonts`), so no reader sees empty boxes.
    """
    with i18n.language(language) as lang:
        sub = f"<p class='userops-note'>{escape(subtitle)}</p>" if subtitle else ""
        footer = escape(i18n.t("report.generated", time=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"))
        font = fonts.css_for(title + subtitle + body + footer)
        return (
            f"<!DOCTYPE html>\n<html lang='{lang.html}'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{font}{STYLE}</style></head>"
            f"<body>{sub}{body}<footer>{footer}</footer></body></html>\n"
        )


def _for_stakeholders(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop parameter cells and everything that is not a result: stderr, errors' tracebacks stay out."""
    clean = copy.deepcopy(notebook)
    kept = []
    for cell in clean.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [
                _with_alt(o)
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
        kept.append(cell)
    clean.cells = kept
    return clean


def _with_alt(output: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A PNG figure with a text alternative in its metadata (see ``notebook.setup``) as an ``<img alt>``."""
    data = output.get("data", {})
    alt = output.get("metadata", {}).get("image/png", {}).get("alt")
    if "image/png" not in data or not alt:
        return output
    png = data["image/png"].replace("\n", "")
    return nbformat.v4.new_output(
        "display_data", data={"text/html": f"<img alt='{escape(alt)}' src='data:image/png;base64,{escape(png)}'>"}
    )


def notebook_title(notebook: nbformat.NotebookNode, default: str) -> str:
    """The text of the first level-1 heading in a markdown cell."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def notebook_html(
    notebook: nbformat.NotebookNode, *, title: str, subtitle: str = "", language: str = i18n.DEFAULT
) -> str:
    """An executed notebook as a stakeholder page: outputs and prose only."""
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        anchor_link_text="",
    )
    body, _ = exporter.from_notebook_node(_for_stakeholders(notebook))
    return page(title, body, subtitle=subtitle, language=language)


def index_html(run: dict, reports: list[dict]) -> str:
    """The run's front page, in the run's language: every report with its status, headline numbers, a link."""
    language = run.get("language", i18n.DEFAULT)
    with i18n.language(language):
        return page(i18n.t("index.title", dataset=run["dataset_name"]), _index_body(run, reports), language=language)


def _needs(skip: dict) -> str:
    return i18n.t("index.needs", what=skip["needs"]) if "needs" in skip else skip["reason"]


def _failure(report: dict) -> tuple[str, str]:
    """What went wrong, in the page's language: the manifest keeps its English message (an interface); an
    input problem's message is already in the run's language (the notebook raised it in that language)."""
    t, kind = i18n.t, report.get("error_name", "")
    if kind == "Timeout" and "minutes" in report:
        return t("index.error.timeout_name"), t("index.error.timeout", minutes=f"{report['minutes']:g}")
    if kind == "NotRun" and "reason" in report:
        return t("index.error.not_run_name"), t("index.error.not_run", reason=report["reason"])
    if kind == "WorkerDied" and "exit_code" in report:
        return t("index.error.worker_died_name"), t("index.error.worker_died", code=report["exit_code"])
    if kind == "DataError":
        return t("index.error.input"), report.get("error_message", "")
    return kind, report.get("error_message", "")


def _index_body(run: dict, reports: list[dict]) -> str:
    t = i18n.t
    rows = []
    for report in reports:
        name = escape(report["name"])
        if report.get("english_only"):
            name += f" · {escape(t('index.english_only'))}"
        if report["status"] == "ok":
            link = f"<a href='{escape(report['html'])}'>{escape(report['title'])}</a>"
            status = f"<span class='status-ok'>{escape(t('index.ok'))}</span>"
            detail = "".join(
                f"<div><strong>{escape(v)}</strong> {escape(k)}</div>" for k, v in report.get("headlines", [])[:4]
            )
        else:
            link = escape(report["title"])
            status = f"<span class='status-failed'>{escape(t('index.failed'))}</span>"
            kind, message = _failure(report)
            detail = (
                f"<div class='error'>{escape(t('index.error', kind=kind, message=message))}</div>"
                f"<div>{escape(t('index.kept_notebook', path=report.get('ipynb', '')))}</div>"
            )
            if report.get("log_tail"):
                log = (
                    f"<a href='{escape(report['log'])}'>{escape(report['log'])}</a>"
                    if report.get("log")
                    else escape(t("index.the_log"))
                )
                detail += (
                    f"<details><summary>{escape(t('index.log_tail', log=chr(0))).replace(chr(0), log)}</summary>"
                    f"<pre class='error'>{escape(report['log_tail'])}</pre></details>"
                )
        seconds = escape(t("index.seconds", seconds=f"{report.get('seconds', 0):.0f}"))
        rows.append(
            f"<tr><td>{link}<div class='userops-note'>{name}</div></td><td>{status}</td>"
            f"<td style='text-align:left'>{detail}</td><td>{seconds}</td></tr>"
        )
    for skip in run.get("skipped", []):
        rows.append(
            f"<tr><td>{escape(skip['name'])}</td><td>{escape(t('index.skipped'))}</td>"
            f"<td style='text-align:left'>{escape(t('index.not_applicable', reason=_needs(skip)))}</td>"
            "<td></td></tr>"
        )
    ok = sum(r["status"] == "ok" for r in reports)
    stopped = (
        f"<p class='status-failed'>{escape(t('index.stopped', error=run['error']))}</p>" if run.get("error") else ""
    )
    summary = (
        stopped
        + "<p>"
        + escape(
            t("index.summary", ok=ok, total=len(reports), dataset="\0", path=run["dataset"], run=run["run_id"])
        ).replace("\0", f"<strong>{escape(run['dataset_name'])}</strong>", 1)
        + "</p>"
    )
    quality = "".join(f"<li>{escape(line)}</li>" for line in run.get("quality", []))
    table = (
        f"<table class='userops-table'><tr><th>{escape(t('index.report'))}</th><th>{escape(t('index.status'))}"
        f"</th><th style='text-align:left'>{escape(t('index.headlines'))}</th><th>{escape(t('index.time'))}</th>"
        "</tr>" + "".join(rows) + "</table>"
    )
    return (
        f"<h1>{escape(t('index.heading'))}</h1>{summary}{table}<h2>{escape(t('report.data_quality'))}</h2>"
        f"<ul>{quality}</ul><p class='userops-note'>{escape(t('index.manifest'))}</p>"
    )
