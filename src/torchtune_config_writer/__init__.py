"""Write one complete torchtune config per combination of an experiment's variables.

The public API: :func:`generate` (and :func:`generate_many`), :func:`check` and :func:`validate`;
the pure core under them, :func:`read_inputs` (all the reading) and :func:`render` (inputs to
bytes, reading nothing). The pipeline lives in subpackages that import one way: ``experiment``
(the file and its format) → ``workspace`` (where generated folders and the repository are) →
``generation`` (read the inputs, then the bytes of the generated files, in memory; the launch
back ends' from ``launchers``) → ``output`` (folders on disk: write, drift, check) →
``validation`` (torchtune itself; the only one that imports torch) → ``cli``.
"""

from __future__ import annotations

import sys as _sys

if _sys.argv[:1] == ["-m"] or _sys.argv[0].endswith("torchtune-config-writer"):
    # Imported to run the command line (``python -m``, or its script): Ctrl-C during the first
    # imports ends the process as the signal does, not in a traceback (cli/__init__.py, main()).
    # The C module itself: `signal` imports enum, long enough for a Ctrl-C to land inside.
    import _signal  # type: ignore[import-not-found]

    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

from typing import TYPE_CHECKING, Any  # noqa: E402

from .errors import ConfigWriterError  # noqa: E402

if TYPE_CHECKING:
    from .generation.inputs import Inputs, read_inputs
    from .generation.render import render
    from .output.checking import check
    from .output.generating import Generated, generate, generate_many
    from .validation.validating import validate

__all__ = [
    "ConfigWriterError",
    "Generated",
    "Inputs",
    "check",
    "generate",
    "generate_many",
    "read_inputs",
    "render",
    "validate",
    "__version__",
]
__version__ = "0.3.0"


def __getattr__(name: str) -> Any:
    # Each on first use: a command imports only what it runs (the hook's check never loads
    # validation, nor generating's writer of new folders).
    if name == "check":
        from .output import checking as module
    elif name in ("generate", "generate_many", "Generated"):
        from .output import generating as module  # type: ignore[no-redef]
    elif name in ("read_inputs", "Inputs"):
        from .generation import inputs as module  # type: ignore[no-redef]
    elif name == "render":
        from .generation import render as module  # type: ignore[no-redef]
    elif name == "validate":
        from .validation import validating as module  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
