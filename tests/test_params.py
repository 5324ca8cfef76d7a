import nbformat
import pytest

from tests.conftest import write_notebook
from userops_lib.errors import DataError
from userops_lib.params import notebook_parameters, parse_text, resolve


@pytest.fixture
def declared(tmp_path):
    path = write_notebook(
        tmp_path / "n.ipynb",
        "pass",
        parameters=(
            'period: str = "week"  # cohort size; one of: day, week, month\n'
            "horizons: list[int] = [1, 7, 30]  # days\n"
            "alpha: float = 0.05  # significance level\n"
            "by_country: bool = False  # break down by country\n"
            "snapshot_at: str | None = None  # as of\n"
        ),
    )
    return {"n": notebook_parameters(path)}


def test_reads_names_types_defaults_and_comments(declared):
    params = declared["n"]
    assert list(params) == ["dataset", "artifacts_dir", "period", "horizons", "alpha", "by_country", "snapshot_at"]
    assert (params["horizons"].type, params["horizons"].default, params["horizons"].help) == (
        "list[int]",
        [1, 7, 30],
        "days",
    )
    assert params["snapshot_at"].optional and params["snapshot_at"].base == "str"
    assert params["period"].choices == ("day", "week", "month")


def test_command_line_text_is_read_for_each_type(declared):
    out = resolve(
        declared,
        {"period": "month", "horizons": "1,14", "alpha": "0.1", "by_country": "true", "snapshot_at": "none"},
        from_text=True,
    )["n"]
    assert out == {"period": "month", "horizons": [1, 14], "alpha": 0.1, "by_country": True, "snapshot_at": None}
    # A string parameter keeps its text verbatim: 'NO' (Norway) is not YAML's False.
    assert parse_text(declared["n"]["dataset"], "NO") == "NO"
    assert resolve(declared, {"alpha": "1"}, from_text=True)["n"]["alpha"] == 1.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"no_such": "1"}, "unknown parameter 'no_such': no selected notebook declares it"),
        ({"horizons": "1,x"}, "'horizons' of notebook 'n' must be list[int]"),
        ({"alpha": "high"}, "'alpha' of notebook 'n' must be float"),
        ({"by_country": "maybe"}, "'by_country' of notebook 'n' must be bool"),
        ({"period": "fortnight"}, "'period' of notebook 'n' must be one of day, week, month"),
        ({"artifacts_dir": "/tmp"}, "'artifacts_dir' is set by the runner"),
    ],
)
def test_rejects_unknown_names_and_wrong_types(declared, given, expected):
    with pytest.raises(DataError) as caught:
        resolve(declared, given, from_text=True)
    assert expected in str(caught.value)


def test_per_notebook_values_are_checked_too(declared):
    with pytest.raises(DataError) as caught:
        resolve(declared, {}, per_notebook={"n": {"alpha": "x"}, "missing": {}})
    text = str(caught.value)
    assert "'alpha' of notebook 'n' must be float" in text
    assert "unknown notebook 'missing'" in text


def test_a_parameter_without_annotation_is_rejected(tmp_path):
    path = write_notebook(tmp_path / "n.ipynb", "pass", parameters="x = 3\n")
    with pytest.raises(DataError, match="must be 'name: type = literal'"):
        notebook_parameters(path)


def test_a_notebook_without_parameters_cell_is_rejected(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x: int = 1")]
    nbformat.write(nb, tmp_path / "n.ipynb")
    with pytest.raises(DataError, match="has no cell tagged 'parameters'"):
        notebook_parameters(tmp_path / "n.ipynb")
