import pytest

from userops_lib.errors import DataError, Problem


def test_message_names_table_column_rows_example_and_fix():
    error = DataError(Problem("events", "negative revenue", "make it >= 0", column="amount", rows=3, example=-5.0))
    text = str(error)
    assert "table 'events', column 'amount': negative revenue (3 rows; example -5.0)" in text
    assert "fix: make it >= 0" in text
    assert text.startswith("1 problem in the input")


def test_several_problems_are_listed_together():
    error = DataError([Problem("users", "a", "x", rows=1), Problem("events", "b", "y")], source="folder")
    assert str(error).startswith("2 problems in the input folder:")
    assert "(1 row)" in str(error)
    assert len(error.problems) == 2


def test_an_error_needs_a_problem():
    with pytest.raises(ValueError):
        DataError([])
