"""HTML from Jinja templates (``userops_lib/templates``), autoescaped: every value that reaches a page
is escaped unless Python marks it as HTML already (:func:`markup`, e.g. a table pandas escaped)."""

from __future__ import annotations

import re
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


SCOPE = ".userops-output"


@cache
def scoped_stylesheet() -> str:
    """The reports' style sheet for notebook outputs: every rule under ``.userops-output`` (the page's
    ``body`` rule on the output itself), without the page-only rules (@media, @page), so that JupyterLab
    shows tiles, cards and tables as the report does without restyling JupyterLab."""
    css = re.sub(r"/\*.*?\*/", "", stylesheet(), flags=re.S)
    out, depth, start, i = [], 0, 0, 0
    while i < len(css):
        if css[i] == "@" and depth == 0:  # skip a whole at-rule block
            open_at = css.index("{", i)
            level, j = 1, open_at + 1
            while level:
                level += {"{": 1, "}": -1}.get(css[j], 0)
                j += 1
            i = start = j
            continue
        if css[i] == "}" and depth == 0:
            rule = css[start : i + 1].strip()
            selectors, _, body = rule.partition("{")
            if selectors.strip() == "body":  # the page's type, not its layout (JupyterLab lays out outputs)
                keep = [d for d in body.rstrip("}").split(";") if d.split(":")[0].strip() in ("font-family", "color")]
                body = ";".join(keep) + "}"
            scoped = [
                SCOPE if s.strip() == "body" else f"{SCOPE} {s.strip()}" for s in selectors.split(",") if s.strip()
            ]
            out.append(",".join(scoped) + "{" + body)
            start = i + 1
        i += 1
    return "".join(out)


__all__ = ["block", "markup", "render", "scoped_stylesheet", "stylesheet"]
