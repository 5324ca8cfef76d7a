"""Executed notebooks to stakeholder HTML, and the run's index page.

Reports are self-contained pages: no code, no prompts, no scripts, figures embedded as PNG, one
style sheet inline. Every string that comes from data is escaped before it reaches a page.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import io
import itertools
import re

import nbformat
from markupsafe import Markup
from markupsafe import escape as _escape
from nbconvert import HTMLExporter

from userops_lib import fonts, i18n, narrative, templating
from userops_lib.files import public_path

# Parameter cells, and notes for analysts in JupyterLab (the report says the same from the catalogue).
HIDDEN_TAGS = {"parameters", "injected-parameters", "analyst-only"}

STYLE = templating.stylesheet()  # templates/report.css


def page(title: str, body: str, *, subtitle: str = "", language: str = i18n.DEFAULT) -> str:
    """A complete, self-contained HTML page in ``language`` (``title`` and ``subtitle`` are escaped here).

    A page with CJK characters (Chinese text, or data values such as 微信 in an English report) embeds
    the subset of the CJK font it needs (:mod:`fonts`), so no reader sees empty boxes.
    """
    with i18n.language(language) as lang:
        now = dt.datetime.now(dt.UTC)
        footer = i18n.t("report.generated", time=f"{narrative.day(now)} {now:%H:%M}")
        return templating.render(
            "page.html.j2",
            lang=lang.html,
            title=title,
            subtitle=subtitle,
            body=body,
            footer=footer,
            font_css=fonts.css_for(title + subtitle + body + footer),
            style=STYLE,
        )


def _for_stakeholders(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop parameter cells and everything that is not a result: stderr, errors' tracebacks stay out."""
    clean = copy.deepcopy(notebook)
    kept = []
    figures = itertools.count(1)
    for cell in clean.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [
                _with_alt(_without_notebook_style(o), figures)
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
        kept.append(cell)
    clean.cells = kept
    return clean


NOTEBOOK_STYLE = re.compile(r"<style class='userops-style'>.*?</style>", re.S)


def _without_notebook_style(output: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An output's style for JupyterLab (the scoped report rules and its CJK characters as a font) is dropped:
    the page carries the report's style sheet and one font subset for all of its text."""
    html = output.get("data", {}).get("text/html")
    if html is None:
        return output
    text = "".join(html) if isinstance(html, list) else html
    output["data"]["text/html"] = NOTEBOOK_STYLE.sub("", text)
    return output


def _with_alt(output: nbformat.NotebookNode, figures) -> nbformat.NotebookNode:
    """A PNG figure with a text alternative in its metadata (see ``notebook.setup``) as an ``<img alt>``,
    in 256 colours (a third of the bytes; charts are flat colours and lines), opening full size when
    tapped (a phone shows a 900-pixel chart at 390)."""
    data = output.get("data", {})
    alt = output.get("metadata", {}).get("image/png", {}).get("alt")
    if "image/png" not in data or not alt:
        return output
    png = _paletted(data["image/png"].replace("\n", ""))
    html = templating.block("figure", alt, png, next(figures))
    return nbformat.v4.new_output("display_data", data={"text/html": html})


def _paletted(png: str) -> str:
    """A base64 PNG in an adaptive 256-colour palette, or as it was when that is not smaller."""
    from PIL import Image

    raw = base64.b64decode(png)
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (OSError, ValueError):  # not an image Pillow reads: published as it came
        return png
    small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii") if out.tell() < len(raw) else png


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
    if kind == "WriteError" and "errno" in report:
        key = f"index.errno.{report['errno']}"
        reason = t(key) if i18n.has(key) else report.get("error_message", "")
        message = t("index.error.write", reason=reason, file=report["file"]) if report.get("file") else reason
        return t("index.error.write_name"), message
    if kind == "DataError":
        return t("index.error.input"), report.get("error_message", "")
    return kind, report.get("error_message", "")


def _index_body(run: dict, reports: list[dict]) -> str:
    t = i18n.t
    rows = []
    for report in reports:
        row = {
            "ok": report["status"] == "ok",
            "name": report["name"],
            "title": report["title"],
            "english_only": report.get("english_only", False),
            "html": report.get("html", ""),
            "headlines": [(k, v) for k, v in report.get("headlines", [])[:4]],
            "ipynb": report.get("ipynb", ""),
            "seconds": f"{report.get('seconds', 0):.0f}",
            "log_tail": report.get("log_tail", ""),
            "warnings": report.get("warnings", []),  # published, but a model in it failed: not shown as OK
        }
        if not row["ok"]:
            row["kind"], row["message"] = _failure(report)
            log = (
                Markup("<a href='{0}'>{0}</a>").format(report["log"])
                if report.get("log")
                else _escape(t("index.the_log"))
            )
            row["log_summary"] = Markup(str(_escape(t("index.log_tail", log=chr(0)))).replace(chr(0), str(log)))
        rows.append(row)
    skipped = [{"name": s["name"], "reason": _needs(s)} for s in run.get("skipped", [])]
    ok = sum(r["status"] == "ok" for r in reports)
    summary = Markup(
        str(
            _escape(
                t(
                    "index.summary",
                    ok=ok,
                    total=len(reports),
                    dataset="\0",
                    path=public_path(run["dataset"]),
                    run=run["run_id"],
                )
            )
        )
    ).replace("\0", Markup("<strong>{}</strong>").format(run["dataset_name"]), 1)
    return templating.render(
        "index.html.j2",
        run={"error": run.get("error")},
        summary=summary,
        rows=rows,
        skipped=skipped,
        quality=run.get("quality", []),
    )
