"""Report text in the reader's language: message catalogues (gettext PO files read with Babel).

Every sentence, heading, label and caption a report shows is a message in
``userops_lib/locales/<locale>/LC_MESSAGES/userops.po``, looked up by a symbolic key such as
``<analysis>.finding.<what>``. English and Chinese are two catalogues of the same keys
(``tests/test_i18n.py`` fails when a key is missing in either or their ``{fields}`` differ).

Templates use ``str.format`` fields: ``t("report.fact.users", users="1,234")``.
Fields are filled with text that is already formatted for the language (see :mod:`narrative`), and a
value's own braces are never read as fields (``format_map`` formats the template only).

The language of the current report is a context variable set once by ``notebook.setup(language)``
or :func:`use`; everything that formats numbers, dates or sentences reads it.
"""

from __future__ import annotations

import contextlib
import gettext
import string
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES = Path(__file__).with_name("locales")
DOMAIN = "userops"


@dataclass(frozen=True)
class Language:
    code: str  # what a user types: --lang zh
    locale: str  # the catalogue folder and Babel's locale
    html: str  # <html lang=...>
    name: str  # the language's own name


LANGUAGES = {
    "en": Language("en", "en", "en", "English"),
    "zh": Language("zh", "zh_CN", "zh-CN", "简体中文"),
}
DEFAULT = "en"
_current: ContextVar[str] = ContextVar("userops_language", default=DEFAULT)


def check(code: str) -> str:
    """``code`` if it is a language the reports are written in, else a ValueError (this module sits below the
    one error type: a user's language is checked as a parameter, with its choices, before it gets here)."""
    if code not in LANGUAGES:
        raise ValueError(f"unknown language '{code}': use one of: {', '.join(LANGUAGES)}")
    return code


def use(code: str) -> None:
    """Make ``code`` the language of everything formatted from now on (in this context)."""
    _current.set(check(code))


def current() -> Language:
    return LANGUAGES[_current.get()]


@contextlib.contextmanager
def language(code: str):
    """``with i18n.language("zh"): ...``: a language for a block, restored after."""
    token = _current.set(check(code))
    try:
        yield LANGUAGES[code]
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Catalogue:
    messages: dict[str, str | tuple[str, ...]]
    plural: Callable[[int], int]  # n -> index of the plural form

    def keys(self) -> set[str]:
        return set(self.messages)


@cache
def catalogue(code: str) -> Catalogue:
    """The messages of language ``code``, read once per process."""
    path = LOCALES / LANGUAGES[code].locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        po = read_po(handle, locale=LANGUAGES[code].locale, domain=DOMAIN)
    messages: dict[str, str | tuple[str, ...]] = {}
    for message in po:
        if not message.id:
            continue  # the header
        key = str(message.id[0] if isinstance(message.id, tuple | list) else message.id)
        text = message.string
        messages[key] = tuple(text) if isinstance(text, tuple | list) else str(text)
    return Catalogue(messages, gettext.c2py(po.plural_expr))


def has(key: str) -> bool:
    return key in catalogue(_current.get()).messages


def t(key: str, /, n: float | None = None, **fields: object) -> str:
    """The message ``key`` in the current language with its fields filled.

    ``n`` picks the plural form of a plural message ("1 campaign", "2 campaigns"); it is also the field
    ``{n}`` unless one is given. A missing key is an error, never a silent English fallback.
    """
    book = catalogue(_current.get())
    try:
        text = book.messages[key]
    except KeyError:
        raise KeyError(f"message '{key}' is not in the {_current.get()} catalogue ({DOMAIN}.po)") from None
    if isinstance(text, tuple):
        if n is None:
            raise ValueError(f"message '{key}' has plural forms: give n")
        text = text[min(book.plural(abs(int(n))), len(text) - 1)]
    if n is not None:
        fields.setdefault("n", n)
    return text.format_map(fields)


class Said:
    """A catalogue message said when a message holding it is formatted, in that moment's language (a field of
    a keyed problem: 'at least 1' in an English message, '不小于 1' in a Chinese one)."""

    def __init__(self, key: str, **fields: Any):
        self.key, self.fields = key, fields

    def __format__(self, spec: str) -> str:
        return format(t(self.key, **self.fields), spec)

    def __str__(self) -> str:
        return format(self, "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Said) and (self.key, self.fields) == (other.key, other.fields)

    def __hash__(self) -> int:
        return hash((self.key, tuple(sorted(self.fields.items()))))


def fields(template: str) -> set[str]:
    """The ``{field}`` names a template uses (for the catalogue checks)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
