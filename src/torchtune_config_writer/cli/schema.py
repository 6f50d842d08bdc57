"""``schema``: the JSON Schema of ``experiment.yaml``, for editors that check YAML as you type;
``schema --check EXP...``: experiment files checked against it, read as the tool reads them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode
from ..experiment.schema import schema_bytes
from ..terminal import check_mark
from ..wording import plural


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser(
        "schema",
        help=summary,
        description="Print the JSON Schema (draft-07) of experiment.yaml. Save it with "
        "`torchtune-config-writer schema > experiment.schema.json` and point your editor at it, "
        "e.g. with the first line `# yaml-language-server: $schema=<path>` in experiment.yaml. "
        "With --check, check experiment files against it instead: read as generate reads them, "
        "so `!replace` is the mapping it holds.",
    )
    parser.add_argument(
        "--check",
        nargs="+",
        type=Path,
        metavar="EXP",
        help="check these experiment files (an experiment.yaml, or the folder holding one) "
        "against the schema: one error line per violation, exit code 2",
    )


def run(args: argparse.Namespace) -> int:
    if args.check:
        from ..experiment.schema import check_schema

        count = check_schema(args.check)
        if not args.quiet:
            verb = "matches" if count == 1 else "match"
            print(f"{check_mark()} {plural(count, 'experiment file')} {verb} the schema")
        return ExitCode.OK
    data = schema_bytes()
    # The file's exact bytes: a text stream would translate newlines on some platforms.
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        sys.stdout.write(data.decode("utf-8"))
    else:
        sys.stdout.flush()
        stream.write(data)
        stream.flush()
    return ExitCode.OK
