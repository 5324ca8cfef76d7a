"""Chinese (CJK) text without tofu, on a machine with no system CJK font.

Decision: ship the font through a package dependency, not SVG text. ``mplfonts`` (MIT, on PyPI)
carries Noto Sans CJK SC (SIL Open Font License); we use only that file.

* Charts: the font is registered with matplotlib and placed after DejaVu Sans in ``font.family``, so
  Latin text keeps its look and every CJK character (labels, and data values such as 渠道 = 微信)
  falls back to Noto. PNG charts then look the same on every reader's machine; SVG with text left to
  the browser would show tofu wherever the reader has no CJK font (a headless CI browser, many Linux
  desktops) and would make charts depend on the reader's fonts.
* Pages: a report that contains CJK characters embeds a subset of the same font (only the characters
  on the page, typically 30-150 KB) as an ``@font-face``, keeping the HTML self-contained.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import re
from functools import cache
from pathlib import Path

from userops_lib.files import atomically

FAMILY = "Noto Sans CJK SC"
CSS_FAMILY = "userops CJK"
# what follows the embedded face in a font-family list (the page's body rule says the same)
FALLBACK = '-apple-system,"Segoe UI",Roboto,Helvetica,Arial,"PingFang SC","Microsoft YaHei",sans-serif'
LATIN = "DejaVu Sans"


@cache
def cjk_font() -> Path:
    """The Noto Sans CJK SC font file installed with ``mplfonts``."""
    spec = importlib.util.find_spec("mplfonts")  # not imported: only its font file is used
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package 'mplfonts' (it carries the CJK font) is missing: run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NotoSansCJKsc-Regular.otf"
    if not path.is_file():
        raise RuntimeError(f"the CJK font is not where mplfonts keeps it: {path}")
    return path


@cache
def register() -> list[str]:
    """Add the CJK font to matplotlib; the ``font.family`` list charts use (Latin first, CJK fallback)."""
    import dataclasses

    from matplotlib import font_manager

    manager = font_manager.fontManager
    if not any(entry.name == FAMILY for entry in manager.ttflist):
        manager.addfont(str(cjk_font()))
        # The font has one weight; titles are bold. Without a bold entry matplotlib logs "findfont: Failed to
        # find font weight bold for Noto Sans CJK SC" above every chart (a pink box in JupyterLab): the same
        # file stands for bold, drawn at its own weight.
        regular = next(entry for entry in manager.ttflist if entry.name == FAMILY)
        manager.ttflist.append(dataclasses.replace(regular, weight=700))
        manager._findfont_cached.cache_clear()  # type: ignore[attr-defined]
    return [LATIN, FAMILY]


# CJK ideographs and punctuation, Hangul, compatibility forms, full-width forms, extension planes.
RANGES = ((0x2E80, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x2FA1F))


_CJK = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in RANGES) + "]")


def is_cjk(char: str) -> bool:
    return _CJK.fullmatch(char) is not None


def cjk_chars(text: str) -> str:
    """The distinct CJK characters of ``text``, sorted (one regular-expression pass: a page of 300k
    characters, its images included, took 0.8 s character by character)."""
    return "".join(sorted(set(_CJK.findall(text))))


def css_for(text: str, *, family: str = CSS_FAMILY) -> str:
    """An ``@font-face`` rule embedding the CJK characters of ``text`` (empty when there are none), as
    ``family`` (a notebook output names its own, so that outputs never compete for one family's faces)."""
    chars = cjk_chars(text)
    if not chars:
        return ""
    data = base64.b64encode(_subset(chars)).decode("ascii")
    # The face is first in the page's font list, limited to CJK code points (Latin text keeps the
    # system fonts): a web font later in the list is skipped while it loads, and Chromium then kept
    # empty boxes for the first text of each size. Regular only: bold is synthesised.
    ranges = ",".join(f"U+{low:X}-{high:X}" for low, high in RANGES)
    return (
        f"@font-face{{font-family:'{family}';font-style:normal;font-weight:400;unicode-range:{ranges};"
        f"src:url(data:font/otf;base64,{data}) format('opentype')}}"
    )


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "userops" / "fonts"


@cache
def _subset(chars: str) -> bytes:
    """The CJK font cut down to ``chars``. A cut takes 0.4-1 s (the font is 16 MB), and every page and
    notebook output with CJK text needs one: cuts are kept in the user's cache folder, named by the
    font file, the fontTools version and the characters, and shared by kernels, workers and runs."""
    import fontTools

    font = cjk_font()
    facts = font.stat()
    name = f"{font}|{facts.st_size}|{facts.st_mtime_ns}|{fontTools.version}|{chars}"
    cached = _cache_folder() / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.otf"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    data = _cut(chars)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomically(cached, lambda partial: partial.write_bytes(data))
    except OSError:
        pass  # a read-only home: cut again next time
    return data


def _cut(chars: str) -> bytes:
    from fontTools import subset

    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    with open(cjk_font(), "rb") as handle:
        font = subset.load_font(handle, options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=chars)
        subsetter.subset(font)
        out = io.BytesIO()
        subset.save_font(font, out, options)
    return out.getvalue()
