"""The names of generated files: one place, so that writing, reading and checking agree."""

from __future__ import annotations

import re

CONFIGS_DIR = "configs"
RUN_MAPPING = "run_mapping.yaml"
LOCK_FILE = "base.lock.yaml"
SLURM_SCRIPT = "slurm_array.sh"
RUN_FILE_GLOB = "run_[0-9]*.yaml"

# The files of a generated folder that the tool writes; everything else there is the user's.
_OWNED = re.compile(r"run_[0-9]{3,}\.yaml|run_mapping\.yaml|base\.lock\.yaml|slurm_array\.sh")


def run_file(run_id: str) -> str:
    """The config file of a run: ``run_007.yaml``."""
    return f"{run_id}.yaml"


def is_owned(name: str) -> bool:
    """Whether a file name in a generated folder is one the tool writes."""
    return _OWNED.fullmatch(name) is not None
