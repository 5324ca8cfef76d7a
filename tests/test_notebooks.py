"""Every notebook follows the conventions the runner and reviewers rely on."""

import nbformat
import pytest

from tests.conftest import ROOT
from userops_lib.params import notebook_parameters
from userops_lib.report import REQUIRED_PARAMETERS

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_analysis_notebooks_are_there():
    assert "overview" in [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_first_typed_and_commented(path):
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    params = notebook_parameters(path)
    for name in REQUIRED_PARAMETERS:
        assert name in params
    for param in params.values():
        assert param.help, f"{path.name}: parameter '{param.name}' needs a comment"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    # a note for the analyst, not a heading: the report's first output is its title (JupyterLab showed it twice)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "analyst-only" in first.metadata.get("tags", [])
    assert not first.source.startswith("#") and f"{path.stem}.ipynb" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_with_its_help(path, caplog):
    """papermill skips a parameter line with a second '=' (say in its help) and then warns 'Passed unknown
    parameter' on every batch run; its own reader must find what ours finds."""
    from papermill.translators import PythonTranslator

    first_code = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    with caplog.at_level("WARNING", logger="papermill"):
        found = {p.name: p.help for p in PythonTranslator.inspect(first_code)}
    assert "Unable to parse" not in caplog.text
    assert found == {name: param.help for name, param in notebook_parameters(path).items()}
