"""torch and torchtune, imported once and only by validation, with clear errors when they fail.

Everything else in the package runs without them; this module imports them lazily so that the
commands and the pre-commit hook never pay for the seconds an ``import torch`` takes.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import importlib.util
import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigWriterError, first_line
from ..installing import INSTALL_ADVICE, torchao_advice
from ..wording import closest
from .findings import Severity, TuneVerdict

# Packages some torchtune components need but torchtune does not install: a component that needs
# one that is missing here is reported as unverified, not broken.
OPTIONAL_PACKAGES = frozenset(
    {
        "bitsandbytes",
        "torchvision",
        "torchaudio",
        "wandb",
        "comet_ml",
        "mlflow",
        "tensorboard",
        "peft",
        "transformers",
        "lm_eval",
        "vllm",
        "kagglehub",
        "PIL",
    }
)


@dataclass(frozen=True)
class Runtime:
    """The imported torchtune pieces validation uses (torchtune's own code, not copies)."""

    config: ModuleType  # torchtune.config, whose validate() is `tune validate`
    locate: Any  # torchtune.config._utils._get_component_from_path
    config_error: type[Exception]
    versions: dict[str, str]


def require_installed() -> None:
    """Raise, without importing them, when torch or torchtune is not installed.

    Raises:
        ConfigWriterError: one is missing; how to install the CPU build.
    """
    for name in ("torch", "torchtune"):
        if importlib.util.find_spec(name) is None:
            raise ConfigWriterError(
                f"validation needs {name}, which is not installed here: {INSTALL_ADVICE}"
            )


@cache
def load_runtime() -> Runtime:
    """Import torch and torchtune once.

    Raises:
        ConfigWriterError: they are missing or fail to import (e.g. a torchao that does not fit
            the installed torchtune).
    """
    require_installed()
    try:
        # Standard output is the report's (--format json): nothing an import prints goes there.
        with _quiet_torchao(), contextlib.redirect_stdout(io.StringIO()):
            # torchtune.training: every recipe imports it, and it imports what a torchao that
            # does not fit lacks (a mismatch is said here once, not as every component failing).
            import torchtune.training  # noqa: F401
            from torchtune import config
            from torchtune.config._errors import ConfigError
            from torchtune.config._utils import _get_component_from_path
    except Exception as exc:  # noqa: BLE001 - any import failure is an environment to fix
        # A library's message can span lines (torchtune's "torchao not installed" does): the
        # error is one line, so its first line is what is said.
        advice = torchao_advice() if _about_torchao(exc) else INSTALL_ADVICE
        raise ConfigWriterError(
            f"importing torchtune failed ({type(exc).__name__}: {first_line(exc)}): {advice}"
        ) from None
    versions = {name: importlib.metadata.version(name) for name in ("torch", "torchtune")}
    # torch's import leaves some 450,000 objects that live as long as the process; every full
    # collection of the garbage collector would walk them all again, config after config.
    gc.freeze()
    return Runtime(config, _get_component_from_path, ConfigError, versions)


class _ImportNotices(logging.Filter):
    """Drops what torchao logs below an error while it is imported: that its C++ kernels are
    skipped or fail to load for this torch, which the CPU checks of validation never call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet_torchao() -> Iterator[None]:
    """torchao's import-time notices kept from the user (they would print on every run, and
    there is nothing to do about them); its later messages, and every other library's, stay."""
    logger = logging.getLogger("torchao")
    notices = _ImportNotices()
    logger.addFilter(notices)
    try:
        yield
    finally:
        logger.removeFilter(notices)


def _about_torchao(exc: BaseException) -> bool:
    return any(
        "torchao" in str(seen) or (getattr(seen, "name", None) or "").startswith("torchao")
        for seen in _chain(exc)
    )


# Kept: validate of 2,000 configs 42 s, not 66 s with OmegaConf.create per config (performance.md).
class ReusedConfig:
    """One ``DictConfig`` for a run of configs alike, changed value by value from one to the next.

    The configs of a sweep differ in a few values; ``OmegaConf.create`` of each would build the
    same hundred nodes again, most of validation's time. Where two configs have the same keys in
    the same order and lists of the same lengths, the values that differ are set on the previous
    one's nodes with OmegaConf's own assignment, which gives what ``create`` gives (a test holds
    them equal); any other change builds it afresh.
    """

    def __init__(self) -> None:
        self._data: Any = None
        self._cfg: Any = None

    def config(self, data: dict[str, Any]) -> Any:
        """``OmegaConf.create(data)``, or the previous config with the values that differ set."""
        from omegaconf import OmegaConf

        changes = None if self._cfg is None else _changed_values(self._data, data, ())
        try:
            if changes is None:
                self._cfg = OmegaConf.create(data)
            else:
                for keypath, value in changes:
                    node = self._cfg
                    for part in keypath[:-1]:
                        node = node[part]  # a mapping or list in both: the node itself
                    node[keypath[-1]] = value
        except BaseException:
            # OmegaConf refused a value (a malformed ${): the config is half changed, so the
            # next one is built afresh.
            self._cfg = self._data = None
            raise
        self._data = data
        return self._cfg


def _changed_values(
    old: Any, new: Any, keypath: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], Any]] | None:
    """The leaves of ``new`` that differ from ``old`` (by type too: 1, 1.0 and true differ);
    ``None`` when their shapes differ."""
    pairs: list[tuple[str | int, Any, Any]]
    if isinstance(old, dict) and isinstance(new, dict):
        if list(old) != list(new):
            return None
        pairs = [(key, old[key], value) for key, value in new.items()]
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return None
        pairs = [(index, *both) for index, both in enumerate(zip(old, new, strict=True))]
    elif isinstance(old, (dict, list)) or isinstance(new, (dict, list)) or not keypath:
        return None
    else:
        return [] if type(old) is type(new) and old == new else [(keypath, new)]
    changes = []
    for part, before, after in pairs:
        found = _changed_values(before, after, (*keypath, part))
        if found is None:
            return None
        changes += found
    return changes


def tune_validate(
    runtime: Runtime,
    path: Path,
    read: dict[str, Any] | None = None,
    reused: ReusedConfig | None = None,
) -> tuple[TuneVerdict, str, Any]:
    """torchtune's own check of one config file, as ``tune validate FILE`` runs it: torchtune's
    ``config.validate`` on the file as ``OmegaConf.load`` gives it.

    Args:
        runtime: The imported torchtune.
        path: The config file.
        read: The file's content, when it is known to read as OmegaConf reads it (a file the
            tool wrote: ``OmegaConf.load`` is ``OmegaConf.create`` of what its YAML loader
            gives, and the tool writes nothing the two loaders read differently). It is not
            parsed again.
        reused: Where the ``DictConfig`` of ``read`` is made, when configs alike come in turn.

    Returns:
        (verdict, message, config): ``passed``; ``failed`` with torchtune's ConfigError text; or
        ``crashed`` with the exception ``tune validate`` would end in; and the ``DictConfig``
        checked, ``None`` when OmegaConf could not make one.
    """
    from omegaconf import OmegaConf

    cfg = None
    try:
        if read is None:
            cfg = OmegaConf.load(path)
        else:
            cfg = OmegaConf.create(read) if reused is None else reused.config(read)
        with contextlib.redirect_stdout(io.StringIO()):
            runtime.config.validate(cfg)
    except runtime.config_error as exc:
        return TuneVerdict.FAILED, str(exc), cfg
    except Exception as exc:  # noqa: BLE001 - tune validate shows a traceback here
        return TuneVerdict.CRASHED, f"{type(exc).__name__}: {first_line(exc)}", cfg
    return TuneVerdict.PASSED, "", cfg


# Components by dotted path (and the folder a user's own module came from): a sweep of 2,000
# configs names the same dozen (what failed to import fails the same way again).
_LOCATED: dict[tuple[str, str], tuple[Any, Severity | None, str]] = {}


def locate_component(
    runtime: Runtime, dotted: str, folder: Path | None = None
) -> tuple[Any, Severity | None, str]:
    """Import a ``_component_`` the way torchtune's instantiate does under ``tune run``.

    Args:
        runtime: The imported torchtune.
        dotted: The component's dotted path.
        folder: Where ``tune run`` runs (the experiment's folder): ``tune run`` appends it to
            ``sys.path``, so a module of the user's own there (``schedules.py``) imports.

    Returns:
        (object, None, "") when it imports; else (None, severity, message), the severity being
        ``unverified`` when what is missing is an optional package not installed here.
    """
    key = (dotted, "")
    if key not in _LOCATED:
        _LOCATED[key] = _locate(runtime, dotted)
    found = _LOCATED[key]
    top = dotted.split(".")[0]
    if found[1] is not None and folder is not None and _module_in(folder, top):
        key = (dotted, str(folder.resolve()))
        if key not in _LOCATED:
            with _importable_from(folder):
                _LOCATED[key] = _locate(runtime, dotted)
        found = _LOCATED[key]
    return found


def _module_in(folder: Path, name: str) -> bool:
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


@contextlib.contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """``folder`` on ``sys.path`` as ``tune run`` puts it (last); then the modules imported from
    it are forgotten, so that another experiment's module of the same name is its own."""
    where = str(folder.resolve())
    sys.path.append(where)
    try:
        yield
    finally:
        sys.path.remove(where)
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if file.startswith(where + "/"):
                del sys.modules[name]


def _locate(runtime: Runtime, dotted: str) -> tuple[Any, Severity | None, str]:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return runtime.locate(dotted), None, ""
    except Exception as exc:  # noqa: BLE001 - whatever import raises, it does not import
        missing = _missing_module(exc)
        top = missing.split(".")[0] if missing else ""
        own = dotted.split(".")[0]
        if (
            top
            and importlib.util.find_spec(top) is None
            and (top != own or top in OPTIONAL_PACKAGES)
        ):
            return (
                None,
                Severity.UNVERIFIED,
                (f"{dotted} needs {top}, which is not installed here: it could not be checked"),
            )
        return None, Severity.ERROR, f"{dotted} cannot be imported: {_why_not(exc, dotted)}"


def _why_not(exc: BaseException, dotted: str) -> str:
    """The root cause in one line, with a close name where the last part is misspelt."""
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    parent, _, name = dotted.rpartition(".")
    module = sys.modules.get(parent)
    if module is not None and not hasattr(module, name):
        close = closest(name, dir(module))
        hint = f": did you mean {parent}.{close}?" if close is not None else ""
        return f"{parent} has no {name}{hint}"
    return f"{type(cause).__name__}: {first_line(cause)}"


def _missing_module(exc: BaseException) -> str:
    for seen in _chain(exc):
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            return seen.name
    return ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, innermost last."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
