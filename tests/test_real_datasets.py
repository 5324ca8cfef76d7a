"""The bundled real datasets load whole, with the counts their SOURCE.md states."""

import hashlib

import pytest

from tests.conftest import DATA
from userops_lib.data import load_dataset

pytestmark = pytest.mark.slow  # whole reports on the bundled real datasets


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hillstrom_files_are_the_documented_bytes():
    assert _sha256(DATA / "hillstrom" / "hillstrom.csv") == (
        "27bab8c5d3669f26ec08ebb50a0a78317542f29501156f2e2af6781fab4cd7e2"
    )


def test_telco_files_are_the_documented_bytes():
    assert _sha256(DATA / "telco_churn" / "telco_churn.csv") == (
        "16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91"
    )


@pytest.fixture(scope="module")
def hillstrom():
    return load_dataset(DATA / "hillstrom")


@pytest.fixture(scope="module")
def telco():
    return load_dataset(DATA / "telco_churn")


def test_hillstrom_is_an_assignment_table_with_the_published_arm_sizes(hillstrom):
    assignments = hillstrom.assignments
    assert assignments.count().execute() == 64_000
    arms = assignments.arm.value_counts().execute().set_index("arm")["arm_count"].to_dict()
    assert arms == {"Mens E-Mail": 21_307, "Womens E-Mail": 21_387, "No E-Mail": 21_306}
    assert hillstrom.control_arm == "No E-Mail"
    assert hillstrom.quality.rows_set_aside == 0


def test_hillstrom_row_number_is_the_user_id_in_file_order(hillstrom):
    first = hillstrom.assignments.order_by("user_id").limit(2).execute()
    # The first two data rows of the file: 10,2) $100 - $200,142.44,...,Womens E-Mail and 6,...,No E-Mail.
    assert first.user_id.tolist() == [1, 2]
    assert first.history.tolist() == [142.44, 329.08]
    assert first.arm.tolist() == ["Womens E-Mail", "No E-Mail"]
    last = hillstrom.assignments.filter(hillstrom.assignments.user_id == 64_000).execute()
    assert len(last) == 1


def test_hillstrom_outcomes_match_the_published_control_visit_rate(hillstrom):
    a = hillstrom.assignments
    means = a.group_by("arm").aggregate(visit=a.visit.mean()).execute().set_index("arm")["visit"]
    assert means["No E-Mail"] == pytest.approx(0.106167, abs=5e-7)
    assert means["Mens E-Mail"] == pytest.approx(0.182757, abs=5e-7)
    assert means["Womens E-Mail"] == pytest.approx(0.151400, abs=5e-7)


def test_telco_is_a_users_table_with_tenure_in_months_and_a_churn_flag(telco):
    users = telco.users
    assert users.count().execute() == 7_043
    assert users.user_id.nunique().execute() == 7_043
    assert users.churned.sum().execute() == 1_869
    assert telco.duration_unit == "months"
    assert users.duration.max().execute() == 72
    assert users.duration.min().execute() == 0
    # The 11 blank TotalCharges are read as missing, and all of them have tenure 0 and Churn = No.
    blank = users.filter(users.TotalCharges.isnull()).execute()
    assert len(blank) == 11
    assert set(blank.duration) == {0}
    assert not blank.churned.any()
