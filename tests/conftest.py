from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def write_dataset(folder: Path, files: dict[str, str | pd.DataFrame], manifest: dict | None = None) -> Path:
    """Write a dataset folder: text or DataFrame files, and a dataset.yml when given."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, pd.DataFrame):
            if name.endswith(".parquet"):
                content.to_parquet(path, index=False)
            else:
                content.to_csv(path, index=False)
        else:
            path.write_text(content, encoding="utf-8")
    if manifest is not None:
        (folder / "dataset.yml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def make_dataset(tmp_path):
    counter = {"n": 0}

    def make(files: dict, manifest: dict | None = None) -> Path:
        counter["n"] += 1
        return write_dataset(tmp_path / f"dataset{counter['n']}", files, manifest)

    return make


USERS_CSV = """user_id,signup_at,channel
1,2024-01-01 09:00:00,organic
2,2024-01-02 10:00:00,paid
3,2024-01-03 11:00:00,organic
"""

EVENTS_CSV = """user_id,event_at,event,revenue
1,2024-01-01 09:30:00,session,
1,2024-01-05 12:00:00,purchase,10.5
2,2024-01-02 10:05:00,session,
3,2024-01-04 08:00:00,purchase,20
"""
