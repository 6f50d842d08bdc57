"""Write one complete torchtune config per combination of an experiment's variables.

The public API: :func:`generate` (and :func:`generate_many`), :func:`check` and :func:`validate`.
The pipeline lives in subpackages that import one way: ``experiment`` (the file and its format)
→ ``workspace`` (where generated folders and the repository are) → ``generation`` (the bytes of
the generated files, in memory) → ``output`` (folders on disk: write, drift, check) →
``validation`` (torchtune itself; the only one that imports torch) → ``cli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigWriterError
from .output.generate import Generated, generate, generate_many

if TYPE_CHECKING:
    from .output.check import check
    from .validation.validate import validate

__all__ = [
    "ConfigWriterError",
    "Generated",
    "check",
    "generate",
    "generate_many",
    "validate",
    "__version__",
]
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    # check and validate on first use: generating never pays for their imports.
    if name == "check":
        from .output.check import check

        return check
    if name == "validate":
        from .validation.validate import validate

        return validate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
