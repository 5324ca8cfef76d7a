"""The README's shell examples run as written.

Every ```bash block (and every block whose first line is a `$` prompt) is run here, line by line, unless
the line before it says `<!-- illustrative: ... -->`. `make` targets are checked with `make -n` (the
targets exist and resolve; CI runs `make test` itself and `make report` builds the reports the other tests
read); `userops report` lines run with `--check` (the dataset, parameters and config are checked and the
reports listed: every check that can fail before a kernel starts; the full run of every notebook is the
`sample_run` fixture's); every other `userops` line runs as it is. Files the examples name (the CDNOW
folder, batch.yml) are written from the README's own blocks.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks() -> list[tuple[int, str, str, str]]:
    """(line, language, body, the line before the fence) of every fenced block."""
    out = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", README, re.M | re.S):
        start = README.count("\n", 0, match.start())
        lines = README[: match.start()].rstrip("\n").splitlines()
        out.append((start + 1, match.group(1), match.group(2), lines[-1] if lines else ""))
    return out


def _shell_lines() -> list[tuple[int, str]]:
    found = []
    for line, lang, body, before in _blocks():
        shell = lang == "bash" or body.lstrip().startswith("$ ")
        if not shell or before.strip().startswith("<!-- illustrative"):
            continue
        for offset, text in enumerate(body.splitlines()):
            command = re.split(r"\s+#\s", text, maxsplit=1)[0].strip()
            if command:
                found.append((line + 1 + offset, command))
    return found


def _yaml_after(marker: str) -> str:
    """The first yaml block after ``marker`` in the README."""
    start = README.index(marker)
    match = re.search(r"```yaml\n(.*?)```", README[start:], re.S)
    assert match, marker
    return match.group(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A working directory with the bundled data, the CDNOW folder and batch.yml as the README describes."""
    import importlib.util

    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "data", folder / "data")
    cdnow = folder / "cdnow"
    cdnow.mkdir()
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin
    shutil.copy(Path(spec.origin).parent / "datasets" / "CDNOW_master.txt", cdnow / "CDNOW_master.txt")
    (cdnow / "dataset.yml").write_text(_yaml_after("This `dataset.yml` beside it"), encoding="utf-8")
    (folder / "batch.yml").write_text(_yaml_after("### Batch runs (`--config`)"), encoding="utf-8")
    return folder


def test_the_readme_has_shell_examples_to_run():
    lines = [command for _, command in _shell_lines()]
    assert "make report" in lines and "make test" in lines
    assert sum(command.startswith("userops ") for command in lines) >= 8


@pytest.mark.slow  # each runs the CLI in a subprocess (reports with --check, Spark for two)
@pytest.mark.parametrize(("line", "command"), _shell_lines(), ids=lambda value: str(value)[:60])
def test_each_shell_example_runs_as_written(workdir, line, command):
    words = shlex.split(command)
    env = dict(os.environ)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value userops ...
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if words[0] == "make":
        done = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (line, done.stderr)
        return
    assert words[0] == "userops", (line, command)
    if words[1] == "report":
        words.append("--check")
    userops = Path(sys.executable).parent / "userops"
    done = subprocess.run([str(userops), *words[1:]], cwd=workdir, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, (line, command, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr


def test_the_readme_describes_every_analysis_and_each_of_its_own_parameters():
    """A section per registered analysis ("**`name`: …**") whose table names each parameter of its Params
    beyond the common ones, and no parameter it does not have (a new analysis or field fails here until the
    README says what it means)."""
    import dataclasses

    from userops_lib import analyses, contract

    common = {f.name for f in dataclasses.fields(contract.Common)}
    for analysis in analyses.every():
        section = re.search(rf"^\*\*`{analysis.name}`: .*?\*\*$(.*?)(?=^\*\*`|^## |^### )", README, re.S | re.M)
        assert section, f"README: no section for the analysis '{analysis.name}'"
        rows = re.findall(r"^\| ([^|]+) \|", section.group(1), re.M)
        named = {name for row in rows for name in re.findall(r"`(\w+)`", row)}
        fields = {f.name for f in dataclasses.fields(analysis.Params)}
        assert fields - common <= named, (analysis.name, sorted(fields - common - named))
        assert named <= fields, (analysis.name, sorted(named - fields))
