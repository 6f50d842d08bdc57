"""``schema``: the JSON Schema of ``experiment.yaml``, for editors that check YAML as you type;
``schema --check EXP...``: experiment files checked against it, read as the tool reads them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigWriterError, ExitCode
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
        "paths",
        nargs="*",
        type=Path,
        metavar="EXP",
        help="with --check: an experiment.yaml, or the folder holding one",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the EXP files against the schema instead of printing it: one error line "
        "per violation, exit code 2",
    )


def run(args: argparse.Namespace) -> int:
    if args.check != bool(args.paths):  # a flag, so that -q may come anywhere after it
        wanted = "the experiment files to check" if args.check else "--check to check them"
        raise ConfigWriterError(f"schema --check takes experiment files: give {wanted}")
    if args.check:
        from ..experiment.schema import check_schema

        count = check_schema(args.paths)
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
