"""What a notebook calls: open the dataset, show findings, save artifacts, state the run's details.

Notebooks stay thin: a parameters cell, one call that computes a result object, then cells that
show its findings, charts and tables. Everything shown from data is escaped (see
:mod:`userops_lib.narrative`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from userops_lib import narrative, plots
from userops_lib.data import Dataset, load_dataset
from userops_lib.errors import DataError
from userops_lib.files import atomically

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _display(html_text: str) -> None:
    """Show HTML in the notebook; '$' in it is text, not TeX: JupyterLab typesets $...$ in HTML outputs
    ("14.31andARPPU60.73") except inside an element of class tex2jax_ignore (what pandas uses too)."""
    from IPython.display import HTML, display

    display(HTML(f"<div class='tex2jax_ignore mathjax_ignore'>{html_text}</div>"))


def setup() -> None:
    """Theme and display settings shared by every notebook."""
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
    described.describes = True
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


def open_dataset(dataset: str, *, snapshot_at: str = "", filter_column: str = "", filter_value: str = "") -> Dataset:
    """Load the dataset a notebook analyses, optionally restricted to one segment of users."""
    ds = load_dataset(resolve_dataset(dataset), snapshot_at=snapshot_at or None)
    if filter_column or filter_value:
        if not (filter_column and filter_value):
            raise DataError.single("parameters", "filter_column and filter_value go together",
                                   "give both (e.g. filter_column=country, filter_value=US) or neither")
        ds = ds.restrict(filter_column, filter_value)
    return ds


def show_findings(result, *, title: str = "Findings") -> None:
    """Headline tiles and the findings sentences of a result object."""
    _display(narrative.headlines_html(result.headlines) + narrative.findings_html(result.findings, title=title))


def show_table(frame: pd.DataFrame, *, caption: str | None = None, max_rows: int = 30,
               formats: dict | None = None) -> None:
    """A table (escaped); ``formats`` maps columns to display functions such as ``narrative.percent``."""
    _display(narrative.table_html(frame, caption=caption, max_rows=max_rows, formats=formats))


def show_note(text: str) -> None:
    """A short explanatory paragraph (escaped)."""
    _display(f"<p class='userops-note'>{narrative.escape(text)}</p>")


def save_artifacts(artifacts_dir: str, tables: dict[str, pd.DataFrame], *, headlines=None) -> list[str]:
    """Write each table as ``<artifacts_dir>/<name>.csv`` and the headlines as ``headline.json``.

    Does nothing when ``artifacts_dir`` is empty (an analyst's interactive run).
    """
    if not artifacts_dir:
        return []
    folder = Path(artifacts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        atomically(path, lambda partial, frame=frame: frame.to_csv(partial, index=False,
                                                                    date_format="%Y-%m-%dT%H:%M:%S"))
        written.append(path.name)
    if headlines is not None:
        text = json.dumps([list(h) for h in headlines], indent=1)
        atomically(folder / "headline.json", lambda partial: partial.write_text(text, encoding="utf-8"))
    return written


def show_run_details(parameters: dict, dataset: Dataset, *, definitions: list[str] | None = None) -> None:
    """The short 'method and data' section at the end of a report: parameters, definitions, data quality."""
    rows = "".join(f"<tr><th>{narrative.escape(k)}</th><td>{narrative.escape(repr(v))}</td></tr>"
                   for k, v in parameters.items() if k != "artifacts_dir")
    parts = ["<div class='userops-details'><h2>Method and data</h2>"]
    if definitions:
        parts.append("<h3>Definitions</h3><ul>" + "".join(f"<li>{narrative.escape(d)}</li>" for d in definitions)
                     + "</ul>")
    parts.append(f"<h3>Parameters</h3><table class='userops-table'>{rows}</table>")
    if dataset.restriction:
        parts.append(f"<p>Restricted to users with {narrative.escape(dataset.restriction)}.</p>")
    quality = dataset.quality
    parts.append("<h3>Data quality</h3>")
    parts.append(narrative.table_html(quality.table_frame()))
    if quality.set_aside:
        parts.append(f"<p>{narrative.count(quality.rows_set_aside)} rows were set aside and are not in any figure:</p>")
        parts.append(narrative.table_html(quality.set_aside_frame()))
    else:
        parts.append("<p>No rows were set aside.</p>")
    facts = [f"snapshot (as of): {narrative.timestamp(quality.snapshot_at)}", f"users: {quality.users_text}"]
    if quality.first_event_at is not None:
        facts.append(f"data from {narrative.day(quality.first_event_at)} to {narrative.day(quality.last_event_at)}")
    facts.extend(line.strip() for line in quality.facts)
    parts.append("<ul>" + "".join(f"<li>{narrative.escape(f)}</li>" for f in facts) + "</ul></div>")
    _display("".join(parts))
