"""``completion SHELL``: a shell completion script, generated from the parser by shtab.

The script is static: completing a word does not start Python, and the tool's own start pays
nothing for it (shtab is imported here only).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ExitCode

SHELLS = ("bash", "zsh", "tcsh")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser(
        "completion",
        help=summary,
        description="Print the completion script of SHELL: commands, options, their choices, and "
        "file names where a command takes paths. Save it where your shell loads completions.",
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help=", ".join(SHELLS))


def run(args: argparse.Namespace) -> int:
    import shtab

    from . import PROG, build_parser, command_parsers

    parser = build_parser(every=True)
    for command in command_parsers(parser).values():
        for action in command._actions:
            # A command's positional arguments are paths (experiments, configs, folders),
            # except completion's own SHELL and recipes' PATTERN, whose choices or text say.
            if not action.option_strings and action.choices is None and action.dest != "pattern":
                action.complete = shtab.FILE  # type: ignore[attr-defined]
            elif action.metavar in ("FILE", "DIR", "PATH"):
                action.complete = shtab.FILE  # type: ignore[attr-defined]
    sys.stdout.write(shtab.complete(parser, shell=args.shell, root_prefix=PROG.replace("-", "_")))
    return ExitCode.OK
