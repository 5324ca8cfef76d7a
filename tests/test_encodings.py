"""Files as Chinese (and other) teams export them: GBK/GB18030 from Excel, Big5, Shift-JIS, EUC-KR, UTF-16
with or without a byte-order mark, UTF-8 with one; full-width digits; Chinese date formats.

Each file is written here with Python's own codec from text we set, so the expected values are that text.
"""

from __future__ import annotations

import codecs

import pandas as pd
import pytest

from userops_lib import analyses, load_dataset
from userops_lib.encodings import guess
from userops_lib.errors import DataError

from .conftest import write_dataset

TEXT = {
    "gbk": ("浏览商品", "北京"),
    "gb18030": ("下单", "深圳𠀀"),  # a character outside GBK, that only GB18030 has
    "big5": ("瀏覽", "臺北"),
    "shift_jis": ("購入", "東京"),
    "euc-kr": ("구매", "서울"),
    "utf-16": ("浏览", "上海"),
    "utf-8-sig": ("浏览", "广州"),
}


def _csv(event: str, city: str, user: str = "用户") -> str:
    rows = "".join(f"{user}{i},2025-01-0{i} {9 + i}:00:00,{event},{city}\n" for i in (1, 2))
    return "user_id,event_at,event,city\n" + rows


USER = {"big5": "用戶", "shift_jis": "ユーザー", "euc-kr": "사용자"}  # "user" in each script


def _bytes(text: str, encoding: str, bom: bool | None = None) -> bytes:
    if encoding == "utf-16" and bom is False:
        return text.encode("utf-16-le")
    return text.encode(encoding)


def _dataset(make_dataset, data: bytes, encoding: str | None, fmt: str = "csv"):
    manifest = {"tables": {"events": {"path": "events.csv" if fmt == "csv" else "events.txt"}}}
    if encoding:
        manifest["tables"]["events"]["encoding"] = encoding
    if fmt == "whitespace":
        manifest["tables"]["events"]["format"] = "whitespace"
    folder = make_dataset({}, manifest)
    (folder / manifest["tables"]["events"]["path"]).write_bytes(data)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("encoding", list(TEXT))
def test_a_declared_encoding_reads_every_value_as_written(make_dataset, encoding):
    event, city = TEXT[encoding]
    user = USER.get(encoding, "用户")
    ds = load_dataset(_dataset(make_dataset, _bytes(_csv(event, city, user), encoding), encoding))
    frame = ds.events.order_by("user_id").execute()
    assert frame.user_id.tolist() == [f"{user}1", f"{user}2"]
    assert frame.event.tolist() == [event, event] and frame.city.tolist() == [city, city]
    assert frame.event_at.tolist() == [pd.Timestamp("2025-01-01 10:00"), pd.Timestamp("2025-01-02 11:00")]


@pytest.mark.parametrize("order", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_in_its_byte_order(make_dataset, order):
    ds = load_dataset(_dataset(make_dataset, _csv("浏览", "上海").encode(order), "utf-16"))
    assert ds.events.event.execute().tolist() == ["浏览", "浏览"]


def test_a_gbk_whitespace_log_is_read_when_declared(make_dataset):
    log = "用户1 20250101 浏览\n用户2 20250102 下单\n"
    folder = make_dataset(
        {},
        {
            "tables": {
                "events": {
                    "path": "log.txt",
                    "format": "whitespace",
                    "header": False,
                    "names": ["who", "day", "what"],
                    "encoding": "gbk",
                    "columns": {"user_id": "who", "event_at": {"column": "day", "format": "%Y%m%d"}, "event": "what"},
                }
            }
        },
    )
    (folder / "log.txt").write_bytes(log.encode("gbk"))
    frame = load_dataset(folder).events.order_by("user_id").execute()
    assert frame.event.tolist() == ["浏览", "下单"]


def test_a_latin1_whitespace_log_is_read_when_declared_and_refused_with_the_fix_when_not(make_dataset):
    log = "name day\nMüller 19970101\nKöln 19970102\n".encode("latin-1")
    manifest = {
        "tables": {
            "events": {
                "path": "log.txt",
                "format": "whitespace",
                "columns": {"user_id": "name", "event_at": {"column": "day", "format": "%Y%m%d"}},
            }
        }
    }
    folder = make_dataset({}, manifest)
    (folder / "log.txt").write_bytes(log)
    with pytest.raises(DataError) as refused:
        load_dataset(folder)
    message = str(refused.value)
    assert "log.txt" in message and "line 2" in message and "encoding: cp1252" in message
    manifest["tables"]["events"]["encoding"] = "cp1252"
    folder = make_dataset({"log.txt": ""}, manifest)
    (folder / "log.txt").write_bytes(log)
    assert sorted(load_dataset(folder).events.user_id.execute()) == ["Köln", "Müller"]


def test_an_undeclared_gbk_export_is_refused_naming_the_file_line_and_encoding(make_dataset):
    text = "user_id,event_at,event\n1,2025-01-01,session\n2,2025-01-02,浏览\n"
    with pytest.raises(DataError) as refused:
        load_dataset(_dataset(make_dataset, text.encode("gbk"), None))
    message = str(refused.value)
    assert "events.csv" in message and "line 3" in message
    assert "encoding: gb18030" in message and "latin-1" not in message


def test_gbk_declared_as_latin1_is_refused_instead_of_loading_mojibake(make_dataset):
    with pytest.raises(DataError) as refused:
        load_dataset(_dataset(make_dataset, _csv("浏览商品", "北京").encode("gbk"), "latin-1"))
    assert "reads as gb18030" in str(refused.value) and "encoding: gb18030" in str(refused.value)


def test_an_unknown_encoding_is_refused_before_reading(make_dataset):
    with pytest.raises(DataError) as refused:
        load_dataset(_dataset(make_dataset, b"user_id,event_at\n1,2025-01-01\n", "gbk-ish"))
    assert "unknown encoding 'gbk-ish'" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("城市,事件\n北京,浏览商品\n上海,下单\n", "gbk", "gb18030"),
        ("用户ID,事件\n用户1,浏览\n", "gb18030", "gb18030"),
        ("city\n東京都\n大阪府\n京都\n", "shift_jis", "shift_jis"),
        (
            "city\n" + "서울특별시 강남구\n부산광역시 해운대구\n대구광역시 중구\n인천광역시 남동구\n" * 8,
            "euc-kr",
            "euc_kr",
        ),
        ("city\nKöln\n", "latin-1", "cp1252"),
        ("city\nMünchen\n", "utf-8", "utf-8"),
        ("city\n北京\n", "utf-16", "utf-16"),
    ],
)
def test_the_likely_encoding_of_an_export(text, encoding, expected):
    assert guess(text.encode(encoding)) == expected
    # What the guess names reads the text back exactly.
    assert text.encode(encoding).decode(expected) == text


def test_full_width_digits_are_read_and_thousands_separators_refused(make_dataset):
    events = "user_id,event_at,revenue\n1,2025-01-01,１２３．５\n2,2025-01-02,－０\n3,2025-01-03,42\n"
    ds = load_dataset(make_dataset({"events.csv": events}, {"tables": {"events": {"path": "events.csv"}}}))
    assert ds.events.order_by("user_id").revenue.execute().tolist() == [123.5, 0.0, 42.0]
    bad = "user_id,event_at,revenue\n1,2025-01-01,１２３，４５０\n"
    with pytest.raises(DataError) as refused:
        load_dataset(make_dataset({"events.csv": bad}, {"tables": {"events": {"path": "events.csv"}}}))
    assert "not numbers" in str(refused.value) and "１，２３４" in str(refused.value)


@pytest.mark.parametrize(
    ("written", "fmt"),
    [("2025/1/5", "%Y/%m/%d"), ("2025年1月5日", "%Y年%m月%d日"), ("2025/1/5 8:05", "%Y/%m/%d %H:%M")],
)
def test_chinese_date_formats_work_through_format(make_dataset, written, fmt):
    events = f"user_id,event_at\n1,{written}\n"
    manifest = {
        "timezone": "Asia/Shanghai",
        "tables": {"events": {"path": "events.csv", "columns": {"event_at": {"column": "event_at", "format": fmt}}}},
    }
    ds = load_dataset(make_dataset({"events.csv": events}, manifest))
    local = ds.calendar.to_local(ds.events.event_at.execute().iloc[0])
    assert local.date() == pd.Timestamp("2025-01-05").date()


@pytest.mark.slow
def test_a_large_gbk_file_is_transcoded_in_blocks(make_dataset):
    """A file over the 4 MiB block size, with a two-byte character cut by a block's edge, reads exactly."""
    row = "用户{i},2025-01-01 10:00:00,浏览商品,北京市朝阳区\n"
    text = "user_id,event_at,event,city\n" + "".join(row.format(i=i) for i in range(120_000))
    data = text.encode("gbk")
    assert len(data) > 1 << 22
    ds = load_dataset(_dataset(make_dataset, data, "gbk"))
    assert ds.quality.tables[0].rows_read == 120_000
    assert ds.events.city.execute().eq("北京市朝阳区").all()
    assert codecs.lookup("gbk").name == "gbk"


# -- the GBK export and its UTF-8 twin give the same reports ------------------------------------
CHANNELS = {"organic": "自然流量", "paid": "付费投放", "referral": "好友推荐"}
EVENTS = {"signup": "注册", "session": "访问", "purchase": "购买"}
CITIES = ["北京", "上海", "广州", "深圳"]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The synthetic world (1,500 users) with Chinese channels, event names and cities, written twice as
    CSV: once in GBK (as Excel exports it), once in UTF-8."""
    from userops_lib.synth import make_world

    world = make_world(users=1_500, seed=11)
    users = world["users"].assign(channel=lambda f: f.channel.map(CHANNELS).fillna(f.channel))
    users["city"] = [CITIES[i % 4] for i in range(len(users))]
    events = world["events"].assign(event=lambda f: f.event.map(EVENTS).fillna(f.event))
    assignments = world["assignments"]
    folders = {}
    for name, encoding in (("gbk", "gbk"), ("utf8", "utf-8")):
        manifest = {
            "name": "twin",
            "timezone": "Asia/Shanghai",
            "currency": "¥",
            "tables": {
                "users": {"path": "users.csv", "encoding": encoding},
                "events": {"path": "events.csv", "encoding": encoding},
                "assignments": {"path": "assignments.csv", "control_arm": "control", "encoding": encoding},
            },
        }
        folder = write_dataset(tmp_path_factory.mktemp(name), {}, manifest)
        for table, frame in (("users", users), ("events", events), ("assignments", assignments)):
            (folder / f"{table}.csv").write_bytes(frame.to_csv(index=False).encode(encoding))
        folders[name] = folder
    assert (folders["gbk"] / "users.csv").read_bytes() != (folders["utf8"] / "users.csv").read_bytes()
    return load_dataset(folders["gbk"]), load_dataset(folders["utf8"])


@pytest.mark.slow
def test_a_gbk_export_loads_with_the_values_of_its_utf8_twin(twins):
    gbk, utf8 = twins
    for table in ("users", "events", "assignments"):
        ours = gbk.table(table).order_by(gbk.table(table).columns).execute()
        theirs = utf8.table(table).order_by(utf8.table(table).columns).execute()
        pd.testing.assert_frame_equal(ours, theirs)
    assert set(gbk.users.channel.execute()) >= {"自然流量", "好友推荐"}
    assert set(gbk.events.event.execute()) >= set(EVENTS.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", analyses.names())
def test_every_report_on_a_gbk_export_equals_its_utf8_twins(twins, name):
    module = analyses.get(name)
    gbk, utf8 = twins
    ours, theirs = module.run(gbk, module.Params()), module.run(utf8, module.Params())
    # Loaded values are identical (the test above); a model fitted twice may differ in its last digits (an
    # optimiser's and a numerical Hessian's floating point, thread by thread: CI saw 0.07125 against 0.07135 for
    # a Gamma-Gamma interval end), so fitted numbers are compared to 1e-2.
    for table, frame in ours.tables().items():
        pd.testing.assert_frame_equal(frame, theirs.tables()[table], obj=f"{name}: {table}", rtol=1e-2)
    if name == "customer_value":  # sentences quote fitted numbers, which may differ in a last digit
        assert len(ours.findings) == len(theirs.findings) and [h[0] for h in ours.headlines] == [
            h[0] for h in theirs.headlines
        ]
    else:
        assert ours.findings == theirs.findings and ours.headlines == theirs.headlines
    assert sum(len(frame) for frame in ours.tables().values()) > 0
