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
from typing import Any, NoReturn, get_args  # noqa: E402

from .. import __version__  # noqa: E402
from ..errors import ConfigWriterError, ExitCode, file_system_error  # noqa: E402
from ..terminal import ColourChoice, escaped_output, set_colour  # noqa: E402
from ..wording import closest  # noqa: E402

PROG = "torchtune-config-writer"

# Each command, with the line --help lists it by and the examples that end its own --help; a
# command's module (and what it imports) is loaded only when that command runs: the hook's
# `check` never loads what `validate` needs. Kept: every import at the top makes check of 20
# experiments 0.27 s slower (performance.md).
_COMMANDS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "generate": (
        "write each experiment's generated folder",
        (
            ("generate examples/lora_rank_study", "write configs/ beside the experiment"),
            ("generate exp_a exp_b --validate", "write both, then validate (needs torchtune)"),
            ("generate exp --output-base-dir runs/", "a new timestamped folder in runs/"),
        ),
    ),
    "check": (
        "regenerate in memory and compare with the generated folders on disk",
        (
            ("check", "every experiment of the git repository"),
            ("check examples/lora_rank_study --fix", "write what drifted (still exits 1)"),
            ("check --format json > report.json", "the whole report, for tools"),
        ),
    ),
    "show": (
        "show each run's changes to the base config as a table (writes nothing)",
        (
            ("show examples/lr_batch_sweep", "every run's changes to the base, as a table"),
            ("show exp --wide", "values whole, not cut at 60 characters"),
            ("show exp --format json", "every value whole, for tools"),
        ),
    ),
    "diff": (
        "what the generated folders change, run by run, against a commit (writes nothing)",
        (
            ("diff --base HEAD~1", "what the last commit changed, run by run"),
            ("diff --base origin/main --format markdown --output changes.md", "for a PR"),
        ),
    ),
    "status": (
        "where each run of an experiment is: finished, running, queued, failed, not started...",
        (
            ("status examples/lora_rank_study", "a line per run, its reason and log; counts"),
            ("status exp --format json", "the same for tools"),
        ),
    ),
    "resubmit": (
        "submit the job array again for the runs that failed, timed out, ... or never started",
        (
            ("resubmit examples/lora_rank_study", "what did not finish and is not queued"),
            ("resubmit exp --more-time 2 --more-memory 1.5", "timed out: 2x time; OOM: 1.5x mem"),
            ("resubmit exp --cancelled --dry-run", "cancelled runs too; print the sbatch lines"),
        ),
    ),
    "results": (
        "every run's values, status and metrics, read from the files the runs wrote",
        (
            ("results experiments/lr_study", "a table of the runs and their metrics"),
            ("results exp --best loss", "the run with the lowest final loss, its checkpoint"),
            ("results exp --format csv --output results.csv", "for a spreadsheet"),
        ),
    ),
    "validate": (
        "validate generated configs: torchtune's check and deeper ones",
        (
            ("validate", "every experiment of the git repository"),
            ("validate examples/lora_rank_study -v", "and list every config, valid ones too"),
            ("validate exp --no-execute --json report.json", "static checks, a JSON report"),
        ),
    ),
    "recipes": (
        "list torchtune's built-in configs (tune ls)",
        (
            ("recipes", "every recipe and its configs"),
            ("recipes 'llama3_2/*lora*'", "those matching a glob"),
        ),
    ),
    "schema": (
        "print the JSON Schema of experiment.yaml (for editor completion and checks)",
        (
            ("schema > experiment.schema.json", "save it for your editor"),
            ("schema --check experiments/*/", "check experiment files against it (CI)"),
        ),
    ),
    "completion": (
        "print a shell completion script (bash, zsh or tcsh)",
        (
            ("completion bash > ~/.local/share/bash-completion/completions/" + PROG, "bash"),
            ("completion zsh > ~/.zfunc/_" + PROG, "zsh (with ~/.zfunc in fpath)"),
        ),
    ),
}


class _Formatter(argparse.HelpFormatter):
    """argparse's wrapping, except for the examples at the end, kept line for line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return text
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # One line, like every other error of the tool, naming the help of the command at fault.
        self.exit(ExitCode.BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _examples(examples: tuple[tuple[str, str], ...]) -> str:
    width = max(len(PROG) + 1 + len(command) for command, _ in examples)
    lines = [f"  {PROG} {command}".ljust(width + 4) + f"# {why}" for command, why in examples]
    return "\n".join(["examples:", *lines])


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def _terminal_options() -> argparse.ArgumentParser:
    """The options every command takes, as ruff's and pre-commit's do."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--color",
        choices=get_args(ColourChoice),
        default="auto",
        help="colour errors, warnings and diffs: auto (default) on a terminal, unless NO_COLOR "
        "is set",
    )
    loudness = options.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="print only problems (no progress or ✓ lines)"
    )
    loudness.add_argument(
        "-v", "--verbose", action="store_true", help="print more: every config, file or folder"
    )
    return options


def build_parser(chosen: str | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The command line's parser, with ``chosen``'s arguments (or ``every`` command's, for shell
    completion); the other commands get a parser that only names them."""
    parser = _Parser(
        prog=PROG,
        description="Write one complete torchtune config per combination of an experiment's "
        "variables.",
        epilog=f"`{PROG} COMMAND --help` shows a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    terminal = _terminal_options()
    for name, (summary, examples) in _COMMANDS.items():
        if every or name == chosen:
            _command_module(name).add_parser(commands, summary)
            command = commands.choices[name]
            command.epilog = _examples(examples)
            command._add_container_actions(terminal)  # --color, -q, -v after the command
        else:
            commands.add_parser(name, help=summary)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's parser in ``parser`` (from :func:`build_parser`), by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise ValueError("the parser has no commands")


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    # The command is the first argument that is no option (the program's own take no value).
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    if chosen is not None and chosen not in _COMMANDS:
        close = closest(chosen, _COMMANDS)
        guess = f": did you mean {close}?" if close else f" (one of {', '.join(_COMMANDS)})"
        _Parser(prog=PROG).error(f"no command {chosen!r}{guess}")
    parser = build_parser(chosen)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse blames the program; the option belongs to the command's help
        command = command_parsers(parser)[args.command]
        options = [o for action in command._actions for o in action.option_strings]
        first = unknown[0].split("=", 1)[0]
        # Stricter than for names: every option shares its leading dashes.
        close = closest(first, options, cutoff=0.75) if first.startswith("-") else None
        guess = f": did you mean {close}?" if close else ""
        command.error(f"unrecognized arguments: {' '.join(unknown)}{guess}")
    return args


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
        args = _parse(argv)
        set_colour(args.color)
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
