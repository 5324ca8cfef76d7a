"""Every notebook follows the conventions the runner and reviewers rely on."""

import nbformat
import pytest

from tests.conftest import ROOT
from userops_lib import analyses, contract, notebooks
from userops_lib.params import notebook_parameters
from userops_lib.report import REQUIRED_PARAMETERS

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_the_registry_s_generation(tmp_path):
    """One notebook per registered analysis, each exactly what `userops notebooks` writes (edit the analysis'
    Params or ABOUT and regenerate, never the notebook); a notebook of no analysis fails too."""
    assert [p.stem for p in NOTEBOOKS] == sorted(analyses.names())
    assert notebooks.write(ROOT / "notebooks", check=True) == []
    # and the check can fail: a hand edit, a missing notebook and a stray one are each reported
    copy = tmp_path / "notebooks"
    assert sorted(notebooks.write(copy)) == sorted(p.name for p in NOTEBOOKS)  # all written into an empty folder
    edited = copy / "funnel.ipynb"
    edited.write_text(edited.read_text(encoding="utf-8").replace("nb.show_charts(result)", "pass"), encoding="utf-8")
    (copy / "overview.ipynb").unlink()
    (copy / "scratch.ipynb").write_text("{}", encoding="utf-8")
    assert notebooks.write(copy, check=True) == ["overview.ipynb", "funnel.ipynb", "scratch.ipynb"]
    assert not (copy / "overview.ipynb").exists()  # a check writes nothing


def test_the_registry_lists_every_analysis_folder_the_overview_first():
    assert analyses.names()[0] == "overview"
    assert sorted(analyses.names()) == sorted(
        p.parent.name for p in (ROOT / "userops_lib" / "analyses").glob("*/__init__.py")
    )
    for analysis in analyses.every():
        assert issubclass(analysis.Params, contract.Common) and callable(analysis.module.run)
        assert analysis.reductions(), f"{analysis.name}: no REDUCTIONS for the engine matrix"
        assert all(callable(reduce) for reduce in analysis.reductions().values())
        for part in ("text", "charts"):
            assert (ROOT / "userops_lib" / "analyses" / analysis.name / f"{part}.py").exists(), (analysis.name, part)
    with pytest.raises(KeyError):
        analyses.get("nosuch")


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


def _outside(spec) -> object:
    """A value the field's rules refuse (None: the field has no choices or limits)."""
    meta = spec.metadata
    bad = None
    if meta.get("choices"):
        bad = "no-such-choice"
    for rule, step in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
        if meta.get(rule) is not None:
            bad = meta[rule] + step
            break
    if bad is None:
        return None
    return [bad] if isinstance(meta["default"], list) else bad


@pytest.mark.parametrize("name", analyses.names())
def test_every_params_checks_its_fields_rules_when_built_in_the_run_s_language(name):
    """Each analysis' Params is built with its defaults, and refuses a value outside each field's choices or
    limits, naming the field, in English and in Chinese (the runner builds them before any kernel starts)."""
    import dataclasses

    from userops_lib import i18n
    from userops_lib.errors import DataError

    params_type = analyses.get(name).Params
    params_type()  # the defaults are valid
    checked = 0
    for spec in dataclasses.fields(params_type):
        value = _outside(spec)
        if value is None:
            continue
        for language, says in (("en", "must be"), ("zh", "须")):
            with i18n.language(language), pytest.raises(DataError) as refused:
                params_type(**{spec.name: value})
            assert [p.column for p in refused.value.problems] == [spec.name], (spec.name, value)
            assert says in str(refused.value), str(refused.value)
        checked += 1
    assert checked >= 2  # alpha and language at least


def test_the_parameters_cell_says_each_field_s_rules_as_the_cell_reader_reads_them():
    """The comment is generated from the rules, and the reader for notebooks of the user's own reads the same
    rules back from it."""
    import dataclasses

    from userops_lib.params import notebook_parameters

    for analysis in analyses.every():
        cell = notebook_parameters(ROOT / "notebooks" / analysis.notebook_file)
        for spec in dataclasses.fields(analysis.Params):
            rules = contract.rules(spec)
            read = cell[spec.name]
            assert read.choices == (tuple(rules["choices"]) if "choices" in rules else None), spec.name
            assert {(w, b) for w, b in read.bounds} == {
                (words, float(rules[rule])) for rule, words in contract.LIMITS.items() if rule in rules
            }, spec.name
