"""The `fer-batch` command's entry point: imports the command line (typer, OpenCV, NumPy: about a second) with a
Ctrl-C in that second answered like one during a run, with exit status 130 and one line, not a traceback."""
from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130   # as fer_batch.cli, which is not imported yet when this one is needed


def main() -> None:
    try:
        from fer_batch.cli import main as command_line
    except KeyboardInterrupt:
        sys.stderr.write("fer-batch: stopped (Ctrl-C) while starting; nothing was done\n")
        sys.exit(EXIT_INTERRUPTED)
    command_line()
