"""HTML from Jinja templates (``userops_lib/templates``), autoescaped: every value that reaches a page
is escaped unless Python marks it as HTML already (:func:`markup`, e.g. a table pandas escaped)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from userops_lib import i18n


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("userops_lib", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals["t"] = lambda key, /, n=None, **fields: i18n.t(key, n, **fields)
    return env


def render(template: str, **context: Any) -> str:
    """The template ``template`` (a file under templates/) filled with ``context``."""
    return environment().get_template(template).render(**context)


def block(name: str, *args: Any) -> str:
    """One macro of ``blocks.html.j2`` (findings, tiles, cards, title, note, details)."""
    macro = getattr(environment().get_template("blocks.html.j2").module, name)
    return str(macro(*args))


def markup(text: str) -> Markup:
    """``text`` is HTML already (built by another template or escaped by pandas): not escaped again."""
    return Markup(text)


def stylesheet() -> str:
    """The reports' style sheet."""
    loader = environment().loader
    assert loader is not None
    source, _, _ = loader.get_source(environment(), "report.css")
    return source


__all__ = ["block", "markup", "render", "stylesheet"]
