"""Reading the YAML files users write (``dataset.yml``, batch configs) without surprises.

PyYAML's safe loader still does three things that lose a user's intent or the machine:

- **aliases** (``&a`` / ``*a``) expand without limit: a "billion laughs" file of a few lines exhausts
  memory. Hand-written manifests and configs have no use for them, so they are refused.
- **duplicate keys** silently keep the last value (``path:`` written twice reads the second file).
  They are refused, naming the key and its line.
- **YAML 1.1 booleans**: ``yes``, ``no``, ``on``, ``off`` (any case) become ``True``/``False``, so
  ``true_values: [Yes]`` reads as ``[True]`` and matches no churn flag. Only ``true`` and ``false``
  are booleans here, as in YAML 1.2; every other word stays text.

Files must be UTF-8 (a byte-order mark is allowed). Every failure is a :class:`DataError` saying
which file, which line and what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from userops_lib.errors import DataError, Problem, problem_fields
from userops_lib.i18n import Said


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or YAML 1.1 yes/no/on/off booleans."""

    def compose_node(self, parent, index):  # PyYAML's hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"an alias (*{event.anchor}) is not allowed here", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # PyYAML's hook
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # PyYAML rejects unhashable keys itself, with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):  # PyYAML's hook for values that look like dates
        """A date that is not one (2025-13-45) stays text, for the schema and the checks to name."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)

# Booleans as YAML 1.2 has them: true/false only (PyYAML's resolver also takes yes/no/on/off).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def loads(text: str, *, what: str) -> object:
    """Parse YAML text; ``what`` names the file in the error (e.g. ``dataset.yml``)."""
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or exc).strip()
        if "alias" in problem:
            fix = "write the value out in full: anchors and aliases (&name, *name) are not accepted"
        elif "appears twice" in problem:
            fix = "keep one of the two entries"
        else:
            fix = "fix the YAML syntax (indentation, a ':' after each key, quotes around values with ': ' or '#')"
        line = mark.line + 1 if mark is not None else None
        key = "yaml.syntax_at" if line is not None else "yaml.syntax"
        fix_key = {"alias": "yaml.no_alias", "appears twice": "yaml.twice"}
        fix_said = next((Said(f"error.{v}") for k, v in fix_key.items() if k in problem), Said("error.yaml.fix_syntax"))
        raise DataError(
            Problem(
                what,
                f"not valid YAML{where}: {problem}",
                fix,
                key=key,
                values=problem_fields(line=line, problem=problem, fix=fix_said),
            )
        ) from None


def load(path: Path, *, what: str) -> object:
    """Read and parse a YAML file: it must be a UTF-8 text file."""
    if path.is_dir():
        raise DataError(
            Problem(
                what, "is a folder, not a file", "give the path of a YAML file", example=str(path), key="yaml.folder"
            )
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            Problem(
                what, "the file does not exist", "give the path of a YAML file", example=str(path), key="yaml.missing"
            )
        ) from None
    except OSError as exc:
        raise DataError(
            Problem(
                what,
                f"cannot be read: {exc.strerror}",
                "check the path and its permissions",
                example=str(path),
                key="yaml.unreadable",
                values=tuple(({"reason": exc.strerror}).items()),
            )
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            Problem(
                what,
                f"is not UTF-8 text (byte {data[exc.start]:#04x} at position {exc.start})",
                "save the file as UTF-8 (most editors: 'Save with encoding' / 'Reopen with encoding')",
                example=str(path),
                key="yaml.not_utf8",
                values=tuple(({"byte": f"{data[exc.start]:#04x}", "position": exc.start}).items()),
            )
        ) from None
    return loads(text, what=what)


__all__ = ["load", "loads"]
