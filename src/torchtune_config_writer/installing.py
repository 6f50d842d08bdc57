"""How to install PyTorch and torchtune: the one advice that every message of the tool gives.

``pip install torchtune`` (or ``torch``) resolves on Linux to PyTorch's CUDA build and its NVIDIA
libraries, gigabytes that a login node or a laptop has no use for: the tool runs recipes on the
CPU. So the advice names PyTorch's CPU wheels first, and the GPU build for where one trains.
The versions are the ones the tests and the GitHub Action run (``tests/test_installing.py``
holds action.yml, requirements-test.txt and pyproject.toml to them, and every message and doc
that tells a user to install torch or torchtune to this advice).
"""

from __future__ import annotations

TORCH_VERSION = "2.13.0"
TORCHTUNE_VERSION = "0.6.1"  # torchtune's last release
# What torchtune 0.6.1 is tested with: torchao 0.16 dropped what it imports (int4_weight_only;
# 0.18 also torchao.dtypes.nf4tensor), and its import fails.
TORCHAO_VERSION = "0.14.1"
# PyTorch's own index of CPU-only wheels (no CUDA, no NVIDIA libraries).
CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"

INSTALL_TORCH_CPU = f"pip install torch=={TORCH_VERSION} --index-url {CPU_INDEX_URL}"
INSTALL_TORCHAO = f'pip install "torchao=={TORCHAO_VERSION}"'
INSTALL_TORCHTUNE = f'pip install "torchtune=={TORCHTUNE_VERSION}" "torchao=={TORCHAO_VERSION}"'

# One line, for the end of an `error:` line.
INSTALL_ADVICE = (
    f"install PyTorch's CPU build first, `{INSTALL_TORCH_CPU}` (on a GPU machine, the default "
    f"torch build for your CUDA instead), then `{INSTALL_TORCHTUNE}`"
)


def torchao_advice() -> str:
    """What to do when torchtune fails to import for its torchao (missing, or too new)."""
    return (
        f"torchtune {TORCHTUNE_VERSION} imports torchao {TORCHAO_VERSION.rpartition('.')[0]} "
        f"(0.16 and later lack what it imports): `{INSTALL_TORCHAO}`"
    )
