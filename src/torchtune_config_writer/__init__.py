"""Write one complete torchtune config per combination of an experiment's variables."""

from __future__ import annotations

from .errors import ConfigWriterError
from .generate import Generated, generate, generate_many

__all__ = ["ConfigWriterError", "Generated", "generate", "generate_many", "__version__"]
__version__ = "0.2.0"
