"""A torch that fails on import, first on the path of the tests that say a command never
imports torch (see conftest.python_without_torch)."""

raise ImportError("this path must not import torch (tests/poisoned/torch)")
