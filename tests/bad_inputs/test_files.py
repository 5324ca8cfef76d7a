"""Table files from other systems: read as written, every row accounted for, or refused with the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.bad_inputs.corpus import EVENTS, Case, build, check, run

HASH_IDS = "user_id,event_at\n#1001,2024-01-01\n1002,2024-01-02\n#1003,2024-01-03\n1004,2024-01-04\n"
QUOTED = 'user_id,event_at,note\n1,2024-01-01,"two\nlines"\n2,2024-01-02,"a, b"\n3,2024-01-03,"say ""hi"""\n'

CASES = [
    # Valid, however odd: every row is kept.
    Case("hash_first_column", {"events.csv": HASH_IDS}, code=0, rows={"events": (4, 4)}, users=4),
    Case(
        "hash_many_rows",
        {
            "events.csv": "user_id,event_at,revenue\n"
            + "".join(f"{'#' if i % 3 == 0 else ''}{1000 + i},2024-01-0{i % 9 + 1},{i}\n" for i in range(50))
        },
        code=0,
        rows={"events": (50, 50)},
        users=50,
    ),
    Case("utf8_bom", {"events.csv": "\ufeff" + EVENTS}, code=0, rows={"events": (2, 2)}),
    Case("crlf_lines", {"events.csv": EVENTS.replace("\n", "\r\n")}, code=0, rows={"events": (2, 2)}),
    Case("quoted_newlines_and_commas", {"events.csv": QUOTED}, code=0, rows={"events": (3, 3)}),
    Case(
        "semicolons",
        {"events.csv": EVENTS.replace(",", ";")},
        "tables:\n  events:\n    path: events.csv\n    delimiter: ';'\n",
        code=0,
        rows={"events": (2, 2)},
    ),
    Case(
        "tab_separated",
        {"events.tsv": EVENTS.replace(",", "\t")},
        "tables:\n  events: {path: events.tsv}\n",
        code=0,
        rows={"events": (2, 2)},
    ),
    Case("trailing_blank_lines", {"events.csv": EVENTS + "\n\n"}, code=0, rows={"events": (2, 2)}),
    Case("no_final_newline", {"events.csv": EVENTS.rstrip("\n")}, code=0, rows={"events": (2, 2)}),
    Case(
        "headerless_with_names",
        {"events.csv": "1,2024-01-01\n2,2024-01-02\n3,2024-01-03\n"},
        "tables:\n  events:\n    path: events.csv\n    names: [user_id, event_at]\n",
        code=0,
        rows={"events": (3, 3)},
    ),
    Case(
        "first_line_looks_like_comment",
        {"events.csv": "user_id,event_at\n# not a comment,2024-01-01\n"},
        code=0,
        rows={"events": (1, 1)},
        users=1,
    ),
    Case(
        "whitespace_aligned",
        {"log.txt": "00001 19970101  1   11.77\n00002 19970112  5   77.00\n"},
        "tables:\n  events:\n    path: log.txt\n    format: whitespace\n    names: [c, d, q, a]\n"
        "    columns: {user_id: c, event_at: {column: d, format: '%Y%m%d'}, revenue: a}\n",
        code=0,
        rows={"events": (2, 2)},
        users=2,
    ),
    # Refused, with the reason.
    Case("empty_file", {"events.csv": ""}, says=("the file is empty (0 bytes)",)),
    Case("header_only", {"events.csv": "user_id,event_at\n"}, says=("the table is empty",)),
    Case(
        "ragged_rows",
        {"events.csv": "user_id,event_at\n1,2024-01-01,extra\n2,2024-01-02\n"},
        says=("lines do not all have the same number of fields",),
    ),
    Case(
        "latin1_undeclared",
        {"events.csv": "user_id,event_at,city\n1,2024-01-01,K\xf6ln\n".encode("latin-1")},
        says=("not UTF-8", "line 2", "encoding: cp1252"),  # cp1252 reads K\xf6ln as Köln (checked below)
    ),
    Case("corrupt_parquet", {"events.parquet": b"PAR1 this is not parquet"}, says=("could not read the data",)),
    Case(
        "whitespace_ragged",
        {"log.txt": "1 19970101 5\n2 19970102\n"},
        "tables:\n  events:\n    path: log.txt\n    format: whitespace\n    names: [c, d, a]\n"
        "    columns: {user_id: c, event_at: {column: d, format: '%Y%m%d'}}\n",
        says=("lines without exactly 3 fields",),
    ),
    Case(
        "whitespace_without_names",
        {"log.txt": "1 19970101\n"},
        "tables:\n  events:\n    path: log.txt\n    format: whitespace\n    header: false\n",
        says=("has no header and no column names",),
    ),
    Case("stray_file_without_manifest", {"events.csv": EVENTS, "notes.xlsx": "x"}, says=("unknown file 'notes.xlsx'",)),
    Case("two_files_one_table", {"events.csv": EVENTS, "events.parquet": b"x"}, says=("two files for table 'events'",)),
    Case("missing_file", {}, "tables:\n  events: {path: events.csv}\n", says=("unknown file: it does not exist",)),
    Case(
        "repeated_column_name",
        {"events.csv": "user_id,event_at,city,city\n1,2024-01-01,Beijing,Shanghai\n"},
        says=("two columns are named 'city'", "columns 3 and 4"),
    ),
    Case(
        "line_over_the_reader_limit",
        {"events.csv": 'user_id,event_at,note\n1,2024-01-01,"' + "x" * 2_100_000 + "\n2,2024-01-02,ok\n"},
        says=("longer than the CSV reader's limit", "quote left open"),
    ),
    Case(
        "gbk_undeclared",
        {"events.csv": "user_id,event_at,event\n1,2024-01-01,浏览\n2,2024-01-02,下单\n".encode("gbk")},
        says=("events.csv", "line 2", "encoding: gb18030"),
    ),
    Case(
        "gbk_declared",
        {"events.csv": "user_id,event_at,event\n1,2024-01-01,浏览\n2,2024-01-02,下单\n".encode("gbk")},
        "tables:\n  events: {path: events.csv, encoding: gbk}\n",
        code=0,
        rows={"events": (2, 2)},
        users=2,
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_a_table_file_is_read_as_written_or_refused(case, tmp_path, capsys):
    check(case, build(tmp_path, case), capsys)


def test_parquet_with_text_ids_keeps_leading_zeros(tmp_path, capsys):
    frame = pd.DataFrame(
        {"user_id": ["007", "7", "0007"], "event_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])}
    )
    case = Case("parquet_text_ids", {}, code=0, rows={"events": (3, 3)}, users=3)
    folder = build(tmp_path, case)
    frame.to_parquet(folder / "events.parquet", index=False)
    check(case, folder, capsys)


def test_a_conventional_file_linking_out_of_the_folder_is_refused_unread(tmp_path, capsys):
    """A folder without dataset.yml whose events.csv is a link to a file elsewhere: refused, and not a line
    of the other file is printed."""
    outside = tmp_path / "private.csv"
    outside.write_text("secret-first-line\nuser_id,event_at\n", encoding="utf-8")
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "events.csv").symlink_to(outside)
    code, out, err = run(capsys, "validate", str(folder))
    assert code == 2 and "Traceback" not in out + err
    assert "link to a file outside the dataset folder" in err and "secret" not in out + err
