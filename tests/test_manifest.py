import pytest

from userops_lib.errors import DataError
from userops_lib.manifest import conventional_manifest, parse_manifest


def _error(raw) -> str:
    with pytest.raises(DataError) as caught:
        parse_manifest(raw)
    return str(caught.value)


def test_maps_canonical_names_to_source_columns_with_options(tmp_path):
    manifest = parse_manifest(
        {
            "name": "shop",
            "timezone": "Europe/Berlin",
            "snapshot_at": "2024-03-01",
            "tables": {
                "events": {
                    "path": "tx.txt",
                    "format": "whitespace",
                    "header": False,
                    "names": ["cust", "date", "qty", "amount"],
                    "columns": {
                        "user_id": "cust",
                        "event_at": {"column": "date", "format": "%Y%m%d"},
                        "revenue": "amount",
                    },
                }
            },
        },
        root=tmp_path,
    )
    events = manifest.tables["events"]
    assert events.path == tmp_path / "tx.txt"
    assert events.columns["user_id"].source == "cust"
    assert events.columns["event_at"].format == "%Y%m%d"
    assert events.names == ("cust", "date", "qty", "amount")
    assert manifest.timezone == "Europe/Berlin"
    assert manifest.snapshot_at.isoformat() == "2024-03-01T00:00:00"


def test_constant_and_row_number_columns():
    manifest = parse_manifest(
        {
            "tables": {
                "assignments": {
                    "path": "x.csv",
                    "control_arm": "No E-Mail",
                    "columns": {"user_id": {"row_number": True}, "campaign": {"value": "spring"}, "arm": "segment"},
                }
            }
        }
    )
    spec = manifest.tables["assignments"]
    assert spec.columns["user_id"].row_number
    assert spec.columns["campaign"].value == "spring"
    assert spec.control_arm == "No E-Mail"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"tables": {"event": {"path": "e.csv"}}}, "unknown key 'event' in tables"),
        ({"tabels": {}}, "dataset.yml: unknown key 'tabels'"),
        ({"tables": {"events": {"path": "e.csv", "colums": {}}}}, "unknown key 'colums' in tables.events"),
        (
            {"tables": {"events": {"path": "e.csv", "columns": {"when": "date"}}}},
            "'when' is not a canonical column of table 'events'",
        ),
        ({"tables": {"users": {"path": "u.csv", "columns": {"duration": "tenure"}}}}, "needs its unit"),
        (
            {"tables": {"users": {"path": "u.csv", "columns": {"duration": {"column": "tenure", "unit": "years"}}}}},
            "must be one of days, weeks, months",
        ),
        ({"tables": {"events": {"path": "e.xlsx"}}}, "cannot tell the format of 'e.xlsx'"),
        (
            {"tables": {"events": {"path": "e.csv", "columns": {"event_at": {"column": "d", "format": "YYYYMMDD"}}}}},
            "has no % code",
        ),
        ({"timezone": "Mars/Olympus", "tables": {"events": {"path": "e.csv"}}}, "unknown time zone"),
        ({"tables": {"events": {"table": "ev"}}}, "has no 'connection'"),
        ({"tables": {}}, "'tables': must be at least one entry"),
        (
            {"tables": {"users": {"path": "u.csv", "control_arm": "control"}}},
            "'control_arm' belongs to the assignments",
        ),
    ],
)
def test_rejects_bad_manifests_with_a_fix(raw, expected):
    message = _error(raw)
    assert expected in message
    assert "fix:" in message


def test_a_folder_without_manifest_is_read_by_convention(tmp_path):
    (tmp_path / "events.csv").write_text("user_id,event_at\n1,2024-01-01\n")
    (tmp_path / "users.parquet").write_bytes(b"")
    manifest = conventional_manifest(tmp_path)
    assert set(manifest.tables) == {"events", "users"}
    assert manifest.tables["users"].format == "parquet"


def test_an_unknown_file_in_a_folder_without_manifest_is_rejected(tmp_path):
    (tmp_path / "events.csv").write_text("user_id,event_at\n1,2024-01-01\n")
    (tmp_path / "orders.csv").write_text("x\n1\n")
    with pytest.raises(DataError) as caught:
        conventional_manifest(tmp_path)
    assert "unknown file 'orders.csv'" in str(caught.value)
    assert "name data files users, events or assignments" in str(caught.value)
