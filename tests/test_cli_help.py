"""`fer-batch <command> --help` shows every option's help in full, and flags without a value placeholder."""
from __future__ import annotations

import os
import re
import subprocess

import pytest
import typer

from fer_batch.cli import app

COMMANDS = typer.main.get_command(app).commands


def help_text(command: str) -> str:
    env = {**os.environ, "COLUMNS": "400", "TERM": "dumb"}
    done = subprocess.run(["fer-batch", command, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def squeeze(text: str) -> str:
    # help is wrapped to the terminal, at spaces and after hyphens
    return "".join(text.split())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_text_is_shown_whole(command: str) -> None:
    # square brackets in a help text ("[default: ...]", "fer-batch[ray]") must not be eaten as markup
    shown = squeeze(help_text(command))
    for param in COMMANDS[command].params:
        if param.help:
            assert squeeze(param.help) in shown, f"{param.opts}: {param.help!r} not in the help"


def test_flags_show_no_value_placeholder() -> None:
    shown = help_text("analyze")
    flags = [param for param in COMMANDS["analyze"].params if getattr(param, "is_flag", False)]
    assert len(flags) >= 5
    for flag in flags:
        line = next(line for line in shown.splitlines() if re.search(rf"(^|\s){re.escape(flag.opts[-1])}\b", line))
        assert "<" not in line.split(flag.help.split()[0])[0], f"a flag is shown as taking a value: {line.strip()}"


def test_command_examples_in_script_help_keep_their_line_breaks() -> None:
    # a shell continuation (` \` at a line's end) in a plain docstring would join the example into one long line
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    scripts = sorted([*root.glob("training/*.py"), *root.glob("scripts/*.py")])
    with_examples = 0
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        module = ast.parse(source)
        docstring = ast.get_docstring(module, clean=False)
        if docstring is None:
            continue
        literal = ast.get_source_segment(source, module.body[0].value)
        if " \\\n" in literal:
            with_examples += 1
            assert " \\\n" in docstring, f"{script.name}: make its docstring raw (r\"\"\"...) to keep ` \\` line breaks"
    assert with_examples >= 5
