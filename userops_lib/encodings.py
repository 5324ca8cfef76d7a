"""Text files in the encodings exports use: Excel's GBK/GB18030 in China, Big5, Shift-JIS, EUC-KR,
UTF-16 with or without a byte-order mark, UTF-8 with one.

The engine reads UTF-8. A file declared in another encoding (``encoding:`` under its table in
``dataset.yml``, any Python codec name) is transcoded once, streamed in blocks (memory stays bounded
whatever the file's size), into a private temporary UTF-8 copy that the engine reads instead; the
dataset's own file is never touched. A file that does not decode as declared (or, undeclared, as UTF-8)
is refused with a message that names the file, the first line that does not decode, the encoding its
bytes most likely are and the ``encoding:`` line to add. Bytes that read as Chinese are never said to be
latin-1: every byte sequence is valid latin-1, so it would load as mojibake without an error.
"""

from __future__ import annotations

import atexit
import codecs
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

from userops_lib.errors import Problem

_BLOCK = 1 << 22  # 4 MiB per read: memory stays bounded at any file size
_UTF8 = "utf-8"
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_folder: Path | None = None
_CJK = ("gb18030", "gbk", "big5", "shift_jis", "euc_kr", "cp932", "cp949", "cp950", "big5hkscs")
_SINGLE_BYTE = ("iso8859-1", "cp1252", "cp1250", "iso8859-15", "mac-roman")


def codec_name(name: str) -> str | None:
    """Python's canonical name of an encoding (``GBK`` -> ``gbk``, ``utf8`` -> ``utf-8``), or None if unknown."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _scratch() -> Path:
    """A private folder for transcoded copies, removed when the process ends."""
    global _folder
    if _folder is None or not _folder.exists():
        _folder = Path(tempfile.mkdtemp(prefix="userops-utf8-"))
        atexit.register(shutil.rmtree, _folder, ignore_errors=True)
    return _folder


def _utf16_order(path: Path) -> str:
    """``utf-16`` when the file starts with a byte-order mark, else the byte order its zero bytes show."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return "utf-16-be" if even > odd else "utf-16-le"


def as_utf8(path: Path, encoding: str, *, table: str) -> tuple[Path, Problem | None]:
    """The file the engine should read for ``path`` written in ``encoding``: the file itself when it is
    UTF-8 (a byte-order mark is fine), else a transcoded UTF-8 copy. A problem when it does not decode."""
    name = codec_name(encoding) or encoding
    if name in (_UTF8, "utf-8-sig"):
        with path.open("rb") as handle:
            if handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                return path, _problem(
                    path,
                    table,
                    encoding,
                    1,
                    "utf-16",
                    "it starts with a UTF-16 byte-order mark",
                    key="encoding.mismatch",
                )
        return path, _decode(path, _UTF8, table=table, declared=encoding, out=None)
    if name == "utf-16":
        name = _utf16_order(path)
    if name in _SINGLE_BYTE:
        # Every byte is a latin-1 character, so Chinese read as latin-1 loads as mojibake without an error.
        with path.open("rb") as handle:
            sample = handle.read(1 << 20)
        likely = guess(sample)
        if likely in _CJK:
            return path, _problem(
                path, table, encoding, 1, likely, f"its text reads as {likely}", key="encoding.mismatch"
            )
    target = _scratch() / f"{table}-{abs(hash((str(path), name)))}.csv"
    with target.open("w", encoding=_UTF8, newline="") as out:
        problem = _decode(path, name, table=table, declared=encoding, out=out)
    if problem is not None:
        target.unlink(missing_ok=True)
        return path, problem
    return target, None


def _decode(path: Path, name: str, *, table: str, declared: str, out) -> Problem | None:
    """Decode ``path`` block by block (writing the text to ``out`` when given); the problem at the first
    byte that does not decode, or None."""
    decoder = codecs.getincrementaldecoder(name)("strict")
    done = lines = 0  # bytes and line breaks before the current block
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as error:
                # The error's position counts from the block's start, or from bytes held back from the
                # block before (a character cut in two): either way, within a line of the true place.
                return _undecodable(path, table, declared, block, min(error.start, len(block)), lines)
            if out is not None:
                if done == 0 and text.startswith("\ufeff"):
                    text = text[1:]  # a byte-order mark is not data
                out.write(text)
            done += len(block)
            lines += block.count(b"\n")
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError:  # the file ends inside a character
            return _undecodable(path, table, declared, b"", 0, lines)
        if out is not None:
            out.write(tail)
    return None


def _undecodable(path: Path, table: str, declared: str, block: bytes, at: int, lines: int) -> Problem:
    line = lines + block[:at].count(b"\n") + 1
    with path.open("rb") as handle:
        sample = handle.read(1 << 20)
    likely = guess(sample)
    return _problem(path, table, declared, line, likely, f"line {line} does not decode as {declared}")


def _problem(
    path: Path, table: str, declared: str, line: int, likely: str | None, what: str, *, key="encoding.undecodable"
) -> Problem:
    if likely and codec_name(likely) != codec_name(declared):
        fix = (
            f"its bytes read as {likely}: add 'encoding: {likely}' under tables.{table} in dataset.yml "
            f"(or save the file as UTF-8)"
        )
    else:
        fix = (
            f"say the file's encoding under tables.{table} in dataset.yml (encoding: gb18030 for Excel exports in "
            "Chinese, utf-16, big5, shift_jis, ...), or save it as UTF-8"
        )
    declared = "UTF-8" if codec_name(declared) in (_UTF8, "utf-8-sig") else declared
    return Problem(
        table,
        f"the file is not {declared}: {what}",
        fix,
        example=f"{path.name}, line {line}",
        key=key if likely and codec_name(likely) != codec_name(declared) else None,
        values=(
            ("file", path.name),
            ("line", line),
            ("declared", declared),
            ("table", table),
            ("likely", likely or "?"),
        ),
    )


def _cjk_share(text: str) -> float:
    """The share of letters that are CJK ideographs, kana or hangul."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    cjk = sum(1 for c in letters if unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")))
    return cjk / len(letters)


def _double_byte(sample: bytes) -> bool:
    """Whether the bytes above 0x7F come in pairs and runs, as in GBK, Big5, Shift-JIS or EUC-KR text
    (each character two bytes), rather than alone between ASCII letters, as in latin-1 text ('K\xf6ln')."""
    runs = [len(run) for run in re.findall(rb"[\x80-\xff]+", sample)]
    if not runs:
        return False
    alone = sum(1 for n in runs if n == 1)
    return alone / len(runs) < 0.3


def guess(sample: bytes) -> str | None:
    """The encoding ``sample`` most likely is: a byte-order mark's; UTF-16 by its zero bytes; UTF-8; for
    high bytes in pairs (double-byte text), the one charset-normalizer reads best among GB18030 (what
    Excel writes in China), Big5, Shift-JIS, EUC-KR and cp1251; for high bytes alone among ASCII, cp1252
    (else latin-1). A single-byte encoding is never the guess for bytes that read as CJK text."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    head = sample[:4096]
    if head.count(0) > len(head) // 8:
        return "utf-16"
    cut = sample[: sample.rfind(b"\n") + 1] or sample  # whole lines: no character cut in two
    try:
        cut.decode(_UTF8)
        return _UTF8
    except UnicodeDecodeError:
        pass
    if not _double_byte(cut):
        # High bytes alone between ASCII letters: a single-byte Western file (Excel on Windows writes cp1252).
        try:
            cut.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            return "latin-1"
    from charset_normalizer import from_bytes

    # Bytes in pairs: which double-byte encoding reads them as text (Cyrillic's cp1251 competes, whose
    # words are runs of high bytes too); GB18030 when none says.
    best = from_bytes(cut, cp_isolation=["gb18030", "big5", "shift_jis", "euc_kr", "cp1251"]).best()
    if best is None or best.encoding == "gb18030":
        return "gb18030"
    # A few Chinese words are too few for charset-normalizer to tell GBK from its neighbours: a short
    # sample whose byte pairs all lie where GB2312's common characters are is read as Chinese.
    pairs = re.findall(rb"[\x81-\xfe][\x40-\xfe]", cut)
    common = sum(1 for pair in pairs if 0xB0 <= pair[0] <= 0xF7 and pair[1] >= 0xA1)
    if len(pairs) < 100 and pairs and common / len(pairs) >= 0.9:
        return "gb18030"
    return best.encoding


__all__ = ["as_utf8", "codec_name", "guess"]
