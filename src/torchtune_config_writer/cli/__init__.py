"""The command line: a thin shell over the Python API that turns errors into exit codes."""

from __future__ import annotations

import signal

# Ctrl-C before main() is running (the imports of the command line itself) ends the process as
# the signal does, without a traceback; main() turns it back into KeyboardInterrupt, which the
# writer rolls back on and which ends as one line.
signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import NoReturn  # noqa: E402

from .. import __version__  # noqa: E402
from ..errors import ConfigWriterError, ExitCode, file_system_error  # noqa: E402
from ..terminal import escaped_output  # noqa: E402

# Each command, with the line --help lists it by; a command's module (and what it imports) is
# loaded only when that command runs: the hook's `check` never loads what `validate` needs.
# Kept: every import at the top makes check of 20 experiments 0.27 s slower (performance.md).
_COMMANDS = {
    "generate": "write each experiment's generated folder",
    "check": "regenerate in memory and compare with the generated folders on disk",
    "show": "show each run's changes to the base config as a table (writes nothing)",
    "diff": "what the generated folders change, run by run, against a commit (writes nothing)",
    "validate": "validate generated configs: torchtune's check and deeper ones",
    "recipes": "list torchtune's built-in configs (tune ls)",
    "schema": "print the JSON Schema of experiment.yaml (for editor completion and checks)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error of the tool.
        self.exit(ExitCode.BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def _build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="torchtune-config-writer",
        description="Write one complete torchtune config per combination of an experiment's "
        "variables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    # The command is the first argument that is no option (the program's own take no value);
    # the others get a parser that only names them, for --help and for the error of a typo.
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, summary in _COMMANDS.items():
        if name == chosen:
            _command_module(name).add_parser(commands, summary)
        else:
            commands.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code: 0 success, 1 drift or invalid configs, 2 bad input.
    """
    try:  # from the moment Ctrl-C is Python's again, it is one line, not a traceback
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for stream in (sys.stdout, sys.stderr):  # a path the terminal cannot show is escaped
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="backslashreplace")
        argv = sys.argv[1:] if argv is None else argv
        # A repository's names and values reach the terminal or the CI log with nothing that
        # acts.
        with escaped_output():
            return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def _main(argv: Sequence[str]) -> int:
    try:
        # Inside the handler: Ctrl-C while a command's module is imported is one line too.
        args = _build_parser(argv).parse_args(argv)
        code = int(_command_module(args.command).run(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler
        return code
    except ConfigWriterError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except BrokenPipeError:
        # `check | head`: the reader is gone. Python's advice: point stdout at devnull so the
        # flush at exit cannot fail again; 141 is what a shell reports for SIGPIPE (1 would
        # read as drift).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
    except OSError as exc:
        # A folder this user may not read, a full disk: the machine's answer, not a bug.
        print(f"error: {file_system_error(exc)}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        # Ctrl-C: the writer has already rolled back; one line, the shell's code for SIGINT.
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
