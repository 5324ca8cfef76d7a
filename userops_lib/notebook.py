"""What a notebook calls: open the dataset, show findings, save artifacts, state the run's details.

Notebooks stay thin: a parameters cell, one call that computes a result object, then cells that
show its findings, charts and tables. Everything shown from data is escaped (see
:mod:`userops_lib.narrative`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from userops_lib import fonts, i18n, narrative, plots, quality_text, store, templating
from userops_lib.data import Dataset, load_dataset
from userops_lib.errors import DataError
from userops_lib.files import atomically, write_csv, write_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _display(html_text: str) -> None:
    """Show HTML in the notebook; '$' in it is text, not TeX: JupyterLab typesets $...$ in HTML outputs
    ("14.31andARPPU60.73") except inside an element of class tex2jax_ignore (what pandas uses too)."""
    from IPython.display import HTML, display

    # JupyterLab: the report's rules, and this output's CJK characters as a font family of its own (named by
    # the characters: outputs that share a family would share faces that cover only some of their text)
    chars = fonts.cjk_chars(html_text)
    family = f"{fonts.CSS_FAMILY} {hashlib.sha1(chars.encode()).hexdigest()[:10]}"
    own = f".userops-output.userops-font-{family[-10:]}{{font-family:'{family}',{fonts.FALLBACK}}}" if chars else ""
    style = templating.markup(templating.scoped_stylesheet() + fonts.css_for(chars, family=family) + own)
    display(HTML(templating.block("output", templating.markup(html_text), style, family[-10:] if chars else "")))


def setup(language: str = i18n.DEFAULT) -> None:
    """Language, theme and display settings shared by every notebook."""
    i18n.use(language)
    plots.apply_theme()
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
        _describe_figures()
    except ImportError:  # outside IPython: nothing to configure
        pass
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.html.use_mathjax", False)  # '$' in a data frame's cells is text


def _describe_figures() -> None:
    """Each figure's PNG output carries a text alternative (its charts' titles and axes) as metadata.

    IPython lets a formatter return ``(data, metadata)``; the stakeholder page turns it into the image's
    ``alt`` text (nbconvert would otherwise write "No description has been provided for this image").
    """
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    draw = png.lookup_by_type(Figure)
    if getattr(draw, "describes", False):
        return  # already wrapped

    def described(figure):
        return draw(figure), {"alt": plots.describe(figure)}

    described.describes = True  # type: ignore[attr-defined]
    png.for_type(Figure, described)


def resolve_dataset(dataset: str) -> str:
    """A relative dataset path is looked up from the working directory, then from the project root.

    JupyterLab runs a notebook in ``notebooks/``, papermill wherever it is started; both find
    ``data/sample`` this way.
    """
    if "://" in dataset:
        return dataset
    path = Path(dataset)
    if path.is_absolute() or path.exists():
        return str(path)
    for base in (Path.cwd().parent, PROJECT_ROOT):
        if (base / path).exists():
            return str(base / path)
    return str(path)


def parameters(params_type: Any, namespace: dict):
    """The analysis' Params from the parameters cell's variables; sets the report's language and theme."""
    params = params_type.from_namespace(namespace)
    setup(params.language)
    return params


def open_dataset(
    dataset, *, snapshot_at: str = "", timezone: str = "", filter_column: str = "", filter_value: str = ""
) -> Dataset:
    """Load the dataset a notebook analyses (a path, or a Params holding one), optionally restricted to one
    segment of users; ``timezone`` overrides the zone of the dataset's calendar. In a report run the
    checked tables come from the run's store (:mod:`userops_lib.store`) when it holds this load."""
    if not isinstance(dataset, str):
        params = dataset
        dataset, snapshot_at, timezone = params.dataset, params.snapshot_at, params.timezone
        filter_column, filter_value = params.filter_column, params.filter_value
    where = resolve_dataset(dataset)
    # In a `userops report` run the runner has read and checked the data once (userops_lib.store).
    ds = store.for_kernel(where, snapshot_at, timezone) or load_dataset(
        where, snapshot_at=snapshot_at or None, calendar=timezone or None
    )
    if filter_column or filter_value:
        if not (filter_column and filter_value):
            raise DataError.single(
                "parameters",
                "filter_column and filter_value go together",
                "give both (e.g. filter_column=country, filter_value=US) or neither",
                key="filter_pair",
            )
        ds = ds.restrict(filter_column, filter_value)
    return ds


def show_title(name: str, *, level: float = 0.05) -> None:
    """The report's title and introduction, from the catalogue ('<name>.title', '<name>.intro')."""
    _display(templating.block("title", i18n.t(f"{name}.title"), i18n.t(f"{name}.intro", level=narrative.level(level))))


def show_findings(result, *, title: str | None = None) -> None:
    """Headline tiles, KPI cards (where the result has them) and the findings sentences of a result."""
    parts = [narrative.headlines_html(result.headlines)]
    kpi_cards = result.kpi_cards()  # drawn once: the cards read the period's KPIs
    if kpi_cards is not None:
        heading, cards = kpi_cards
        parts.append(narrative.cards_html(cards, heading=heading))
    parts.append(narrative.findings_html(result.findings, title=title))
    _display("".join(parts))


def show_charts(result) -> None:
    """Every chart of a result (the protocol's ``charts()``), each after its note."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    for chart in result.charts():
        if chart.note:
            show_note(chart.note)
        figure = chart.draw().figure
        display(figure)
        plt.close(figure)


def show_tables(result) -> None:
    """The tables a result shows (the protocol's ``shown_tables()``), each with its caption; a table with
    dates says which calendar they are days of."""
    calendar = getattr(result, "calendar", None)
    for shown in result.shown_tables():
        caption = shown.caption
        if calendar is not None and any(pd.api.types.is_datetime64_any_dtype(t) for t in shown.frame.dtypes):
            caption = i18n.t("report.dates_in_zone", caption=caption, zone=narrative.zone(calendar))
        show_table(shown.frame, caption=caption, max_rows=shown.max_rows, formats=shown.formats, classes=shown.classes)


def show_table(
    frame: pd.DataFrame,
    *,
    caption: str | None = None,
    max_rows: int = 30,
    formats: dict | None = None,
    classes: dict | None = None,
) -> None:
    """A table (escaped); ``formats`` maps columns to display functions such as ``narrative.percent``,
    ``classes`` a column's shown texts to CSS classes (a verdict's colour)."""
    _display(narrative.table_html(frame, caption=caption, max_rows=max_rows, formats=formats, classes=classes))


def show_note(text: str) -> None:
    """A short explanatory paragraph (escaped)."""
    _display(templating.block("note", text))


def save_artifacts(artifacts_dir: str, tables: dict[str, pd.DataFrame], *, headlines=None) -> list[str]:
    """Write each table as ``<artifacts_dir>/<name>.csv`` and the headlines as ``headline.json``.

    A CSV holds no live formula: a text cell that starts with ``= + - @``, a tab or a carriage return
    (and is not a number) is written with a ``'`` before it (:func:`files.write_csv`). A table that had
    such a cell is also written exactly as ``<name>.parquet``, for whoever needs the values as they are
    (an id list to upload, say). Does nothing when ``artifacts_dir`` is empty (an interactive run).
    """
    if not artifacts_dir:
        return []
    folder = Path(artifacts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        if write_csv(path, frame):
            exact = folder / f"{name}.parquet"
            atomically(exact, functools.partial(_exact_parquet, frame))
            written.append(exact.name)
        written.append(path.name)
    if headlines is not None:
        text = json.dumps([list(h) for h in headlines], indent=1)
        atomically(folder / "headline.json", lambda partial: partial.write_text(text, encoding="utf-8"))
    return written


def _exact_parquet(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as Parquet; a text column that also holds numbers (Arrow wants one type) as text."""
    import pyarrow as pa

    try:
        frame.to_parquet(path, index=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        mixed = {
            c: frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
            for c in frame.columns
            if frame[c].dtype == object
        }
        frame.assign(**mixed).to_parquet(path, index=False)


def save(result, artifacts_dir: str) -> list[str]:
    """A result's artifacts (the protocol's ``tables()``) and its headlines, in English: files are an
    interface whatever the report's language."""
    with i18n.language("en"):
        headlines = result.headlines
        english_warnings = list(getattr(result, "warnings", []))
    written = save_artifacts(artifacts_dir, result.tables(), headlines=headlines)
    language = i18n.current().code
    if artifacts_dir and english_warnings:  # the runner reads them: the index marks the report a warning
        for name, texts in (("warnings.json", english_warnings), (f"warnings.{language}.json", result.warnings)):
            path = Path(artifacts_dir) / name
            write_text(path, json.dumps(texts, indent=1, ensure_ascii=False))
            written.append(path.name)
    if artifacts_dir and language != "en":  # the index page of a run in another language shows these
        text = json.dumps([list(h) for h in result.headlines], indent=1, ensure_ascii=False)
        path = Path(artifacts_dir) / f"headline.{language}.json"
        atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))
        written.append(path.name)
    return written


def show_workspace(result, dataset: Dataset) -> None:
    """For the analyst extending a notebook (never in the published page): the result's tables and the
    dataset's checked tables, with their sizes and columns and the line that gets each."""
    from IPython.display import Markdown, display

    lines = [i18n.t("workspace.results")]
    for name, frame in result.tables().items():
        columns = ", ".join(map(str, frame.columns[:12])) + (", …" if len(frame.columns) > 12 else "")
        lines.append(f'- `result.tables()["{name}"]`: {len(frame):,} × {len(frame.columns)} ({columns})')
    lines.append("")
    lines.append(i18n.t("workspace.data"))
    for name in ("users", "events", "assignments"):
        if dataset.has(name):
            table = dataset.table(name)
            columns = ", ".join(table.columns[:12]) + (", …" if len(table.columns) > 12 else "")
            lines.append(
                f'- `ds.table("{name}")`: {int(table.count().execute()):,} {i18n.t("workspace.rows")} ({columns})'
            )
    lines.append("")
    lines.append(i18n.t("workspace.how"))
    display(Markdown("\n".join(lines)))


def show_details(result, dataset: Dataset) -> None:
    """'Method and data' from the protocol: the result's parameters and definitions, then data quality."""
    show_run_details(result.params.shown(), dataset, definitions=result.definitions)


def show_run_details(parameters: dict, dataset: Dataset, *, definitions: list[str] | None = None) -> None:
    """The short 'method and data' section at the end of a report: parameters, definitions, data quality."""
    quality = dataset.quality
    set_aside, aside_table = "", ""
    if quality.set_aside:
        set_aside = i18n.t("report.set_aside", n=quality.rows_set_aside, rows=narrative.count(quality.rows_set_aside))
        aside = quality.set_aside_frame()
        aside["reason"] = [quality_text.reason(r) for r in aside.reason]
        aside_table = narrative.table_html(aside)
    _display(
        templating.block(
            "details",
            i18n.t,
            # the dataset by its name (a path is the analyst's machine), every value as text, not Python
            [
                (k, quality.dataset if k == "dataset" else narrative.parameter(v))
                for k, v in parameters.items()
                if k != "artifacts_dir"
            ],
            definitions or [],
            dataset.restriction,
            templating.markup(narrative.table_html(quality.table_frame())),
            set_aside,
            templating.markup(aside_table),
            quality_text.facts(quality),
        )
    )
