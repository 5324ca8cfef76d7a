"""The notebooks are generated from the registry: one thin notebook per analysis (``userops notebooks``).

Each notebook is the same few cells: a note for the analyst, the parameters cell generated from the
analysis' Params (:func:`userops_lib.contract.parameters_cell`), one call of its ``run`` and the cells that
show the result; the last cells are the analyst's own (tagged ``analyst-only``, never published). Cell ids
are derived from the analysis' name and the cell's place, so a generated notebook is the same file every
time and ``tests/test_notebooks.py`` can fail when a committed notebook differs from its generation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from userops_lib import analyses, contract, i18n

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _cell(kind: str, source: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(analysis: analyses.Analysis) -> nbformat.NotebookNode:
    """The notebook of ``analysis``."""
    name = analysis.name
    with i18n.language("en"):
        title = i18n.t(f"{name}.title")
    note = (
        f"*Notebook `{analysis.notebook_file}` — {title}.* {analysis.about.summary} The report's text comes from "
        "the message catalogues in the language of the `language` parameter. Set the parameters below and Run "
        "All; the report (its title first) follows."
    )
    run = (
        "from userops_lib import notebook as nb\n"
        f"from userops_lib.analyses import {name}\n\n"
        f"params = nb.parameters({name}.Params, globals())\n"
        "ds = nb.open_dataset(params)\n"
        f"result = {name}.run(ds, params)\n"
        "nb.save(result, artifacts_dir)\n"
        f'nb.show_title("{name}", level=result.level)'
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("markdown", note, ("analyst-only",)),
        _cell("code", contract.parameters_cell(analysis.Params), ("parameters",)),
        _cell("code", run),
        _cell("code", "nb.show_findings(result)"),
        _cell("code", "nb.show_charts(result)"),
        _cell("code", "nb.show_tables(result)"),
        _cell("code", "nb.show_details(result, ds)"),
        _cell(
            "markdown",
            "## Your analysis\n\nWhere this run's tables and the checked data are, to extend the analysis below. "
            "Cells tagged `analyst-only` stay out of the published report.",
            ("analyst-only",),
        ),
        _cell("code", "nb.show_workspace(result, ds)", ("analyst-only",)),
    ]
    for i, cell in enumerate(nb.cells):
        cell.id = hashlib.sha256(f"{name}/{i}".encode()).hexdigest()[:8]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    if analysis.about.requires:
        nb.metadata["userops"] = {"requires": [list(alternative) for alternative in analysis.about.requires]}
    return nb


def text(analysis: analyses.Analysis) -> str:
    """The notebook file's text (nbformat's JSON, as JupyterLab writes it, ending in a newline)."""
    return nbformat.writes(notebook(analysis)) + "\n"


def write(folder: Path, *, check: bool = False) -> list[str]:
    """Write every registered analysis' notebook into ``folder``; with ``check``, write nothing and return
    the notebooks that differ from their generation (or are missing), plus notebooks of no analysis."""
    folder.mkdir(parents=True, exist_ok=True)
    differ = []
    registered = analyses.every()
    for analysis in registered:
        path = folder / analysis.notebook_file
        wanted = text(analysis)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != wanted:
            differ.append(path.name)
            if not check:
                path.write_text(wanted, encoding="utf-8")
    known = {a.notebook_file for a in registered}
    differ += sorted(p.name for p in folder.glob("*.ipynb") if p.name not in known)
    return differ


__all__ = ["notebook", "text", "write"]
