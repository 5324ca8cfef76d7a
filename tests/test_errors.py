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


@pytest.mark.parametrize(
    ("files", "english", "chinese"),
    [
        (  # a users file with a missing id and a repeated one
            {"users.csv": "user_id,signup_at\n1,2024-01-01\n,2024-01-02\n1,2024-01-03\n"},
            ["user_id is null", "user_id is not unique"],
            ["user_id 为空", "user_id 不唯一", "修复方法：每个用户都需要 ID"],
        ),
        (  # a file the folder cannot place
            {"users.csv": "user_id\n1\n", "orders.csv": "id\n1\n"},
            ["unknown file 'orders.csv' in a folder without dataset.yml"],
            ["没有 dataset.yml 的文件夹中有未知文件“orders.csv”"],
        ),
    ],
)
def test_a_dataset_problem_is_said_in_the_run_s_language(make_dataset, files, english, chinese):
    """Problems of the data (not only of parameters) reach a Chinese run's console in Chinese: each carries a
    catalogue key, and the run's plan is made in its language."""
    from userops_lib import report

    folder = make_dataset(files)
    for language, says in (("en", english), ("zh", chinese)):
        with pytest.raises(DataError) as refused:
            report.plan_run(dataset=str(folder), only=["overview"], language=language)
        for text in says:
            assert text in str(refused.value), str(refused.value)
