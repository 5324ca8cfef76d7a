"""dataset.yml: every way it can be wrong is refused with exit 2 and the fix; hostile YAML is refused."""

from __future__ import annotations

import os

import pytest

from tests.bad_inputs.corpus import EVENTS, USERS, Case, build, check, run

EV = "tables:\n  events:\n    path: events.csv\n"

CASES = [
    Case("yaml_syntax", {"events.csv": EVENTS}, "tables:\n  events: [path: x\n", says=("not valid YAML at line",)),
    Case(
        "alias_bomb",
        {"events.csv": EVENTS},
        'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "description: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n" + EV,
        says=("alias", "anchors and aliases"),
    ),
    Case("alias_small", {"events.csv": EVENTS}, "name: &n shop\ndescription: *n\n" + EV, says=("alias",)),
    Case(
        "duplicate_key",
        {"events.csv": EVENTS, "other.csv": EVENTS},
        "tables:\n  events:\n    path: events.csv\n    path: other.csv\n",
        says=("'path' appears twice",),
    ),
    Case(
        "duplicate_table",
        {"events.csv": EVENTS},
        EV + "  events:\n    path: events.csv\n",
        says=("'events' appears twice",),
    ),
    Case(
        "header_as_string",
        {"events.csv": EVENTS},
        EV + "    header: 'false'\n",
        says=("tables.events.header", "must be true or false"),
    ),
    Case("header_yes", {"events.csv": EVENTS}, EV + "    header: yes\n", says=("must be true or false",)),
    Case(
        "path_number",
        {"123": EVENTS},
        "tables:\n  events:\n    path: 123\n    format: csv\n",
        says=("tables.events.path", "must be text"),
    ),
    Case(
        "path_parent",
        {"events.csv": EVENTS},
        "tables:\n  events:\n    path: ../../etc/passwd\n    format: csv\n",
        says=("outside the dataset folder", "allow_outside"),
    ),
    Case(
        "path_absolute",
        {"events.csv": EVENTS},
        "tables:\n  events:\n    path: /etc/passwd\n    format: csv\n",
        says=("outside the dataset folder",),
    ),
    Case("unknown_top_key", {"events.csv": EVENTS}, "tabels: {}\n" + EV, says=("unknown key 'tabels'",)),
    Case("unknown_table_key", {"events.csv": EVENTS}, EV + "    delimeter: ';'\n", says=("unknown key 'delimeter'",)),
    Case(
        "unknown_column_key",
        {"events.csv": EVENTS},
        EV + "    columns:\n      event_at: {colum: event_at}\n",
        says=("unknown key 'colum'",),
    ),
    Case(
        "unknown_table",
        {"events.csv": EVENTS},
        "tables:\n  orders:\n    path: events.csv\n",
        says=("unknown key 'orders'",),
    ),
    Case("no_tables", {"events.csv": EVENTS}, "name: shop\n", says=("the key 'tables' is missing",)),
    Case("empty_tables", {"events.csv": EVENTS}, "tables: {}\n", says=("at least one entry",)),
    Case("tables_list", {"events.csv": EVENTS}, "tables: [events]\n", says=("tables", "must be a mapping")),
    Case("manifest_list", {"events.csv": EVENTS}, "- events.csv\n", says=("must be a mapping",)),
    Case("manifest_empty", {"events.csv": EVENTS}, "", says=("must be a mapping",)),
    Case("manifest_not_utf8", {"events.csv": EVENTS}, None, says=("is not UTF-8",)),  # bytes written by the test
    Case("unknown_timezone", {"events.csv": EVENTS}, "timezone: Mars/Olympus\n" + EV, says=("unknown time zone",)),
    Case("snapshot_garbage", {"events.csv": EVENTS}, "snapshot_at: soon\n" + EV, says=("snapshot_at is not a date",)),
    Case(
        "unknown_format",
        {"events.xlsx": EVENTS},
        "tables:\n  events:\n    path: events.xlsx\n    format: xlsx\n",
        says=("tables.events.format", "one of csv, whitespace, parquet"),
    ),
    Case(
        "format_not_guessable",
        {"events.dat": EVENTS},
        "tables:\n  events:\n    path: events.dat\n",
        says=("cannot tell the format",),
    ),
    Case(
        "delimiter_two_chars", {"events.csv": EVENTS}, EV + "    delimiter: ';;'\n", says=("tables.events.delimiter",)
    ),
    Case(
        "duration_without_unit",
        {"users.csv": "id,tenure\n1,3\n"},
        "tables:\n  users:\n    path: users.csv\n    columns: {user_id: id, duration: tenure}\n",
        says=("needs its unit",),
    ),
    Case(
        "true_values_boolean",
        {"users.csv": "id,t,c\n1,3,true\n"},
        "tables:\n  users:\n    path: users.csv\n    columns:\n      user_id: id\n"
        "      duration: {column: t, unit: days}\n      churned: {column: c, true_values: [true]}\n",
        says=("must be text, not true/false", "quotes"),
    ),
    Case(
        "mapped_column_missing",
        {"events.csv": EVENTS},
        EV + "    columns: {user_id: customer}\n",
        says=("column 'customer' (for canonical 'user_id') is not in the source",),
    ),
    Case("names_empty", {"events.csv": EVENTS}, EV + "    names: []\n", says=("tables.events.names",)),
    Case("currency_mapping", {"events.csv": EVENTS}, "currency: {symbol: $}\n" + EV, says=("currency",)),
    Case(
        "control_arm_absent",
        {"a.csv": "user_id,campaign,arm\n1,c,x\n2,c,y\n"},
        "tables:\n  assignments:\n    path: a.csv\n    control_arm: holdout\n",
        says=("control arm 'holdout' does not occur",),
    ),
    Case("manifest_is_folder", {"events.csv": EVENTS, "dataset.yml": None}, None, says=("is a folder, not a file",)),
    Case("table_path_is_folder", {"events.csv": None}, EV, says=("the path is a folder, not a file",)),
    Case("folder_of_folders", {"a": None, "b/c": None}, None, says=("no dataset.yml and no users, events",)),
    Case(
        "canonical_twice",
        {"events.csv": "user_id,uid,event_at\n1,2,2024-01-01\n"},
        EV + "    columns: {user_id: uid}\n",
        says=("has a canonical name but another column is mapped onto it",),
    ),
    Case(
        "row_number_on_event",
        {"events.csv": EVENTS},
        EV + "    columns: {event_at: {row_number: true}}\n",
        says=("row_number can only make an id",),
    ),
    Case(
        "snapshot_not_a_date",
        {"events.csv": EVENTS},
        "snapshot_at: 2025-13-45\n" + EV,
        says=("snapshot_at is not a date or time", "'2025-13-45'", "YYYY-MM-DD"),
    ),
    Case(
        "unknown_encoding",
        {"events.csv": EVENTS},
        EV + "    encoding: gbk2\n",
        says=("unknown encoding 'gbk2'", "gb18030"),
    ),
    Case(
        "bad_calendar_zone",
        {"events.csv": EVENTS},
        "calendar: {timezone: Beijing}\n" + EV,
        says=("'Beijing' is not a time zone", "Asia/Shanghai"),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_a_bad_manifest_exits_2_and_names_the_problem(case, tmp_path, capsys):
    folder = build(tmp_path, case)
    if case.id == "manifest_not_utf8":
        (folder / "dataset.yml").write_bytes("name: K\xf6ln\n".encode("latin-1") + EV.encode())
    check(case, folder, capsys)


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):
    """Nine levels of nine: 387 million strings if expanded; refused at the first alias, in milliseconds."""
    import time

    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    folder = build(tmp_path, Case("bomb", {"events.csv": EVENTS}))
    (folder / "dataset.yml").write_text("\n".join(lines) + "\ndescription: *l9\n" + EV, encoding="utf-8")
    started = time.monotonic()
    code, _, err = run(capsys, "validate", str(folder))
    assert code == 2 and "alias" in err
    assert time.monotonic() - started < 5


def test_a_symlink_leading_out_of_the_dataset_folder_is_refused(tmp_path, capsys):
    outside = tmp_path / "secret.csv"
    outside.write_text(EVENTS, encoding="utf-8")
    folder = build(tmp_path, Case("symlink", {}, EV))
    os.symlink(outside, folder / "events.csv")
    code, _, err = run(capsys, "validate", str(folder))
    assert code == 2 and "outside the dataset folder" in err


def test_allow_outside_lets_a_manifest_read_a_shared_file(tmp_path, capsys):
    (tmp_path / "shared.csv").write_text(EVENTS, encoding="utf-8")
    folder = build(
        tmp_path, Case("allowed", {}, "tables:\n  events:\n    path: ../shared.csv\n    allow_outside: true\n")
    )
    code, out, _ = run(capsys, "validate", str(folder))
    assert code == 0 and "2 rows" in out


def test_unquoted_yes_and_no_are_text_so_churn_flags_match(tmp_path, capsys):
    """YAML 1.1 reads Yes as true: true_values: [Yes] matched no row and nobody churned."""
    case = Case(
        "yes_no",
        {"users.csv": "id,t,Churn\n1,3,Yes\n2,5,No\n3,1,Yes\n"},
        "tables:\n  users:\n    path: users.csv\n    columns:\n      user_id: id\n"
        "      duration: {column: t, unit: months}\n"
        "      churned: {column: Churn, true_values: [Yes], false_values: [No]}\n",
        code=0,
        says=("churned   2 of 3 users",),
        rows={"users": (3, 3)},
    )
    check(case, build(tmp_path, case), capsys)


def test_a_latin1_file_is_read_when_the_manifest_says_so(tmp_path, capsys):
    case = Case(
        "latin1",
        {"events.csv": "user_id,event_at,city\n1,2024-01-01,K\xf6ln\n".encode("latin-1")},
        EV + "    encoding: latin-1\n",
        code=0,
        rows={"events": (1, 1)},
    )
    folder = build(tmp_path, case)
    check(case, folder, capsys)
    from userops_lib.data import load_dataset

    assert load_dataset(folder).events.execute()["city"].tolist() == ["K\xf6ln"]


def test_a_missing_dataset_and_a_file_given_as_dataset_exit_2(tmp_path, capsys):
    assert run(capsys, "validate", str(tmp_path / "nowhere"))[0] == 2
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    code, _, err = run(capsys, "validate", str(tmp_path / "events.csv"))
    assert code == 2 and "no such dataset folder" in err


def test_users_table_keeps_its_rows(tmp_path, capsys):
    case = Case("users_ok", {"users.csv": USERS}, code=0, rows={"users": (2, 2)}, users=2)
    check(case, build(tmp_path, case), capsys)
