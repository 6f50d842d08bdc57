"""The JSON Schema of ``experiment.yaml``, and experiment files checked against it as the tool
reads them (``schema --check``).

An editor or a generic checker reads YAML 1.2 with no tags of its own, so it cannot read
``!replace``; here the file is parsed by the tool's own loader, which turns a ``!replace``
mapping into the mapping it holds (a :class:`~..yaml_read.Replace`), so the schema checks it as
that mapping. What the schema cannot say, where the tag may stand, is checked beside it.
jsonschema is imported only by :func:`check_schema` (it costs 0.15 s): ``schema`` alone and the
hook's ``check`` never load it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigWriterError, ErrorList, all_of
from ..yaml_read import Document
from .load import misplaced_replace, misplaced_replace_error, read_experiment_document
from .schema_errors import SchemaErrors

if TYPE_CHECKING:
    from jsonschema import Draft7Validator

SCHEMA_FILE = "experiment.schema.json"


def schema_bytes() -> bytes:
    """The JSON Schema of ``experiment.yaml`` shipped in the package, as stored.

    Returns:
        The bytes of ``experiment.schema.json`` (UTF-8 JSON, draft-07).
    """
    return resources.files("torchtune_config_writer").joinpath(SCHEMA_FILE).read_bytes()


def check_schema(paths: Sequence[Path]) -> int:
    """Check experiment files against the JSON Schema, read as ``generate`` reads them.

    Args:
        paths: Experiment files, or folders holding one (as ``generate`` takes them).

    Returns:
        How many experiment files were checked (all valid).

    Raises:
        ConfigWriterError: every violation of every file, each at its line and column; a path
            that names no experiment file, or a file that is not YAML.
    """
    import jsonschema  # here, not at the top: 0.15 s that only this check needs

    schema = json.loads(schema_bytes())
    validator = jsonschema.Draft7Validator(schema)
    found = ErrorList()
    checked: dict[Path, None] = {}  # a folder and its file given both are one file
    for path in paths:
        doc = found.attempt(partial(read_experiment_document, path), None)
        if doc is None or (where := doc.path.resolve()) in checked:
            continue
        checked[where] = None
        errors = list(_violations(doc, validator))
        if errors:
            found.add(all_of(errors))
    found.raise_found()
    return len(checked)


def _violations(doc: Document, validator: Draft7Validator) -> Iterator[ConfigWriterError]:
    errors = SchemaErrors(validator, doc.data)
    for error in validator.iter_errors(doc.data):
        for keypath, message in errors.explain(error):
            yield doc.error(message, keypath)
    for keypath in misplaced_replace(doc.data):
        yield misplaced_replace_error(doc, keypath)
