"""The `fer-batch` entry point: a Ctrl-C while the command line is still importing (about a second)."""
from __future__ import annotations

import subprocess
import sys

# interrupts itself while importing typer, as a Ctrl-C in the first second does
INTERRUPTED_WHILE_IMPORTING = """
import builtins, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)   # a background job (CI) inherits SIGINT ignored
real_import = builtins.__import__
def interrupting(name, *args, **kwargs):
    if name == "typer":
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting
sys.argv = ["fer-batch", "--help"]
from fer_batch.entry import main
main()
"""


def test_a_ctrl_c_while_starting_exits_130_with_one_line():
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_WHILE_IMPORTING], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "fer-batch: stopped (Ctrl-C) while starting; nothing was done\n"
    assert done.stdout == ""


def test_the_installed_command_and_python_m_go_through_the_entry_point():
    from importlib.metadata import entry_points

    assert entry_points(group="console_scripts")["fer-batch"].value == "fer_batch.entry:main"
    for command in (["fer-batch", "--help"], [sys.executable, "-m", "fer_batch", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Facial-expression analytics" in done.stdout, done.stderr


def test_a_ctrl_c_before_the_analysis_starts_exits_130_with_one_line(tmp_path):
    """Loading the analysis modules (pandas among them) takes about half a second more: click printed "Aborted!"
    and exited 1."""
    code = INTERRUPTED_WHILE_IMPORTING.replace('"typer"', '"pandas"').replace(
        '["fer-batch", "--help"]', f'["fer-batch", "analyze", "--dry-run", {str(tmp_path)!r}]')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "fer-batch: stopped (Ctrl-C)\n"
