"""``schema``: the JSON Schema of ``experiment.yaml``, for editors that check YAML as you type."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from ..errors import ExitCode

SCHEMA_FILE = "experiment.schema.json"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    commands.add_parser(
        "schema",
        help=summary,
        description="Print the JSON Schema (draft-07) of experiment.yaml. Save it with "
        "`torchtune-config-writer schema > experiment.schema.json` and point your editor at it, "
        "e.g. with the first line `# yaml-language-server: $schema=<path>` in experiment.yaml.",
    )


def run(args: argparse.Namespace) -> int:
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


def schema_bytes() -> bytes:
    """The JSON Schema of ``experiment.yaml`` shipped in the package, as stored.

    Returns:
        The bytes of ``experiment.schema.json`` (UTF-8 JSON, draft-07).
    """
    return resources.files("torchtune_config_writer").joinpath(SCHEMA_FILE).read_bytes()
