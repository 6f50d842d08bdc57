"""Run a recipe's own ``recipe_main`` on one config, on a CPU machine, at no real cost.

The execution worker calls :func:`install` once and :func:`execute` in a forked child per
request. What is patched, and why, is in :mod:`.emulation` (one GPU, tensors without data) and
:mod:`.standins` (weights, tokenizer files, data, loggers); everything that raises is still the
recipe's, torchtune's or torch's own code. The run ends at the first checkpoint save, after
setup and one optimizer step, or when a generation or quantization recipe returns.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import re
import runpy
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from ...interpolation_bound import resolving_problem
from . import building, emulation, standins, watch
from .protocol import DELETE, Frame, Mode, Outcome, Request, Status
from .state import STATE

# The torchtune whose internals are patched: another version is not checked (the canary test
# in tests/test_execution.py fails loudly when an upgrade breaks the harness).
SUPPORTED_TORCHTUNE = "0.6."
OUTPUT_KEYS = frozenset({"output_dir", "log_dir"})
_FRAME_LIMIT = 12
_MESSAGE_LIMIT = 2000
_HERE = str(Path(__file__).parent)
_TORCH = str(Path(torch.__file__).parent)
_ENV = re.compile(r"\$\{oc\.env:([^,}]+)\}")  # no default: with one, OmegaConf uses it
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


_INSTALLED: list[bool] = []


def install(shared: Path) -> None:
    """Apply every patch, once per process (the worker does it before forking).

    Args:
        shared: Where files made once for every execution go (stand-in tokenizer files).

    Raises:
        standins.HarnessLimit: torchtune is not the version the harness was made for, or lacks
            what is patched.
    """
    if _INSTALLED:
        return
    import torchtune

    if not torchtune.__version__.startswith(SUPPORTED_TORCHTUNE):
        raise standins.HarnessLimit(
            f"execution is built for torchtune {SUPPORTED_TORCHTUNE}x, this is "
            f"{torchtune.__version__}"
        )
    STATE.shared = shared
    try:
        emulation.emulate_one_gpu()
        emulation.emulate_processes()
        standins.patch_datasets(STATE.data)
        building.patch_instantiate()
        watch.patch_checkpoint_loading()
        watch.count_steps()
        watch.check_token_ids()
    except AttributeError as exc:
        raise standins.HarnessLimit(f"torchtune {torchtune.__version__}: {exc}") from None
    torch.save = watch.no_save
    _INSTALLED.append(True)


def execute(request: Request, work: Path) -> Outcome:
    """Run one request (in a child process: it changes the working folder and sys.argv)."""
    start = time.perf_counter()
    STATE.request, STATE.standins = request, []
    STATE.building, STATE.raised_building = [], None
    STATE.trains, STATE.steps, STATE.shrunk, STATE.largest_token = False, 0, False, -1
    STATE.forwards = 0
    STATE.tokenizer_stood_in, STATE.real_weights, STATE.moved = False, {}, {}
    try:
        work.mkdir(parents=True, exist_ok=True)
        config_file = _prepared_config(request, work)
        main = _recipe_main(request)
        if request.processes > 1:  # what torchrun sets for each process it starts
            address = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
            os.environ.update(address, WORLD_SIZE=str(request.processes), RANK="0")
            os.environ.update(LOCAL_RANK="0", LOCAL_WORLD_SIZE=str(request.processes))
        os.chdir(request.cwd)
        if request.cwd not in sys.path:
            sys.path.append(request.cwd)  # as `tune run`: user code in its folder imports
        sys.argv = [request.recipe, "--config", str(config_file)]
        with emulation.new_mode():
            main()
    except standins.StopRun:
        pass
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return _outcome(request, start, Status.FAILED, "SystemExit", str(exc.code))
    except BaseException as exc:  # noqa: BLE001 - the verdict is the exception itself
        return _failure(request, start, exc)
    return _outcome(request, start, Status.PASSED)


def _outcome(
    request: Request, start: float, status: Status, error: str = "", message: str = "", **more: Any
) -> Outcome:
    return Outcome(
        id=request.id,
        status=status,
        error=error,
        message=message[:_MESSAGE_LIMIT],
        trains=STATE.trains,
        steps=STATE.steps,
        shrunk=STATE.shrunk,
        standins=tuple(dict.fromkeys(STATE.standins)),
        seconds=round(time.perf_counter() - start, 3),
        **more,
    )


# --- the config -----------------------------------------------------------------------------


def _prepared_config(request: Request, work: Path) -> Path:
    """The config as ``tune run`` reads it, with the request's edits, and every place it writes
    moved into ``work`` (a run here never writes where the real run will)."""
    cfg = OmegaConf.load(request.config)
    for keypath, value in request.edits:
        _edit(cfg, keypath, value)
    # validate refused the configs it was given whose interpolations cost past the limits; a
    # base config, or one with some of a config's values (narrowing a failure down), may too.
    unbounded = resolving_problem(OmegaConf.to_container(cfg, resolve=False))
    if unbounded is not None:
        raise standins.HarnessLimit(f"not run: {unbounded.message}")
    STATE.unset = _missing_environment(cfg)
    for name in STATE.unset:
        # Set on the cluster, not here: a path that does not exist here stands in for it (a
        # failure may then be the stand-in's: it is unverified, not an error).
        os.environ[name] = f"/nonexistent-here/{name}"
    for keypath, node in list(_output_leaves(cfg)):
        moved = str(work / "out" / ".".join(map(str, keypath)))
        # One that does not resolve is not remembered: the recipe says so, not here.
        with contextlib.suppress(Exception):
            STATE.moved[moved] = str(node[keypath[-1]])
        node[keypath[-1]] = moved
    if request.mode is Mode.SHAPE:
        # Real shapes need one micro-batch; the values run takes the real number of them.
        steps = cfg.get("gradient_accumulation_steps") if isinstance(cfg, DictConfig) else None
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 1:
            OmegaConf.update(cfg, "gradient_accumulation_steps", 1)
    # Each process reads its share of the rows (a distributed sampler): enough for all of them.
    STATE.data.rows = _rows_for_one_step(cfg) * max(request.processes, 1)
    STATE.data.real = request.real_files
    STATE.data.made_up = 0
    path = work / "config.yaml"
    OmegaConf.save(cfg, path)
    return path


def _edit(cfg: Any, keypath: tuple[str | int, ...], value: Any) -> None:
    node = cfg
    for part in keypath[:-1]:
        node = node[part]
    if value == DELETE:
        del node[keypath[-1]]
    else:
        node[keypath[-1]] = value


def _output_leaves(node: Any, keypath: tuple[str | int, ...] = ()) -> Iterator[Any]:
    """Every ``output_dir``/``log_dir`` but one built only on another (``${output_dir}/logs``:
    it follows the one it names, which is moved itself)."""
    if isinstance(node, DictConfig):
        for key in node:
            child = node._get_node(key)
            value = child._value() if child is not None else None
            if str(key) in OUTPUT_KEYS and isinstance(value, str) and not _follows(value):
                yield (*keypath, str(key)), node
            elif isinstance(value, (DictConfig, ListConfig)):
                yield from _output_leaves(value, (*keypath, str(key)))
    elif isinstance(node, ListConfig):
        for index, value in enumerate(node._iter_ex(resolve=False)):
            if isinstance(value, (DictConfig, ListConfig)):
                yield from _output_leaves(value, (*keypath, index))


def _follows(value: str) -> bool:
    """The value interpolates output folders only (not ``${base_dir}``, not ``${oc.env:...}``)."""
    names = _INTERPOLATION.findall(value)
    return bool(names) and all(
        ":" not in name and name.rsplit(".", 1)[-1] in OUTPUT_KEYS for name in names
    )


def _missing_environment(cfg: Any) -> list[str]:
    text = OmegaConf.to_yaml(cfg, resolve=False)
    return sorted({name.strip() for name in _ENV.findall(text) if name.strip() not in os.environ})


def _whole(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )


def _rows_for_one_step(cfg: Any) -> int:
    """Rows for one optimizer step: batch_size x gradient_accumulation_steps, and enough to
    fill as many packs of tokenizer.max_seq_len where the data is packed."""
    try:
        rows = _whole(cfg.get("batch_size"), 1) * _whole(cfg.get("gradient_accumulation_steps"), 1)
        datasets = cfg.get("dataset")
        nodes = list(datasets) if isinstance(datasets, ListConfig) else [datasets]
        packed = any(isinstance(d, DictConfig) and d.get("packed") is True for d in nodes)
        tokenizer = cfg.get("tokenizer")
        length = tokenizer.get("max_seq_len") if isinstance(tokenizer, DictConfig) else None
        if packed and isinstance(length, int):
            rows *= length // standins.ROW_TOKENS + 1
    except Exception:  # noqa: BLE001 - a value that does not resolve: the recipe says so
        rows = 2
    return max(2, min(rows, 20_000))


# --- the recipe -----------------------------------------------------------------------------


def recipe_file(recipe: str, cwd: str) -> Path | None:
    """The file ``tune run RECIPE`` runs: a built-in recipe's, or a ``.py`` from ``cwd``."""
    import torchtune
    from torchtune._recipe_registry import get_all_recipes

    for known in get_all_recipes():
        if known.name == recipe:  # where `tune run` finds it: beside the torchtune package
            return Path(torchtune.__file__).parent.parent / "recipes" / str(known.file_path)
    path = Path(cwd) / recipe
    return path if path.suffix == ".py" and path.is_file() else None


def _recipe_main(request: Request) -> Callable[[], Any]:
    path = recipe_file(request.recipe, request.cwd)
    if path is None:
        module = request.recipe.removesuffix(".py").replace("/", ".")
        if importlib.util.find_spec(module) is None:
            raise standins.HarnessLimit(f"no recipe {request.recipe} to run")
        namespace = runpy.run_module(module, run_name="__validate__")
    else:
        namespace = runpy.run_path(str(path), run_name="__validate__")
    main = namespace.get("recipe_main") or namespace.get("main")
    if main is None:
        raise standins.HarnessLimit(f"{request.recipe} has no recipe_main() to run")
    for value in namespace.values():  # data is read, packed and sampled with real values
        if inspect.isclass(value) and hasattr(value, "_setup_data"):
            value._setup_data = _with_real_values(value._setup_data)
    return main  # type: ignore[no-any-return]


def _with_real_values(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with emulation.real_values():
            return function(*args, **kwargs)

    return wrapped


# --- the verdict ----------------------------------------------------------------------------


def _failure(request: Request, start: float, exc: BaseException) -> Outcome:
    frames = _frames(exc, request)
    site = f"{frames[-1].file}:{frames[-1].function}" if frames else ""
    error = type(exc).__name__
    message = _message(exc)
    status = _classify(exc, frames)
    if status is Status.FAILED and STATE.unset:
        status = Status.UNVERIFIED
        unset = ", ".join(f"${{oc.env:{name}}}" for name in STATE.unset)
        message = f"{message} (with {unset} not set here, which may be why)"
    building = STATE.raised_building or ()
    innermost = traceback.extract_tb(exc.__traceback__)[-1:]
    raised = "".join(f"{f.filename.split('/site-packages/')[-1]}:{f.lineno}" for f in innermost)
    return _outcome(
        request,
        start,
        status,
        error,
        message,
        site=site,
        frames=tuple(frames),
        raised=raised,
        building=building,
    )


def _message(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.split(": ", 1)[1] if text.startswith(type(exc).__name__ + ": ") else text


def _classify(exc: BaseException, frames: list[Frame]) -> Status:
    from torch._subclasses import fake_tensor

    missing = _missing_package(exc)
    if missing is not None:
        return Status.UNVERIFIED
    limits = (
        standins.HarnessLimit,
        fake_tensor.DataDependentOutputException,
        fake_tensor.UnsupportedOperatorException,
        fake_tensor.DynamicOutputShapeException,
    )
    if isinstance(exc, limits):
        return Status.NOT_CHECKED
    innermost = traceback.extract_tb(exc.__traceback__)
    last = innermost[-1].filename if innermost else ""
    if last.startswith(_HERE) and not isinstance(exc, standins.TokenPastVocabulary):
        return Status.NOT_CHECKED  # raised by the harness itself
    if isinstance(exc, NotImplementedError) and last.startswith(_TORCH):
        return Status.NOT_CHECKED  # an operator a tensor without data does not have
    if isinstance(exc, AssertionError) and str(exc).startswith("NYI"):
        return Status.NOT_CHECKED  # the same, said by torch's fake tensors
    return Status.FAILED


def _missing_package(exc: BaseException) -> str | None:
    """The package an ImportError is about, when it is simply not installed here."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            top = seen.name.split(".")[0]
            if importlib.util.find_spec(top) is None:
                return top
        seen = seen.__cause__ or seen.__context__
    return None


def _frames(exc: BaseException, request: Request) -> list[Frame]:
    """The traceback's frames in torchtune, the recipes or the user's folder, innermost last."""
    own = (str(Path(request.cwd).resolve()), str(Path(request.config).resolve().parent))
    kept = []
    for frame in traceback.extract_tb(exc.__traceback__):
        file = frame.filename
        if "/torchtune/" in file or "/recipes/" in file or file.startswith(own):
            short = file.split("/site-packages/")[-1]
            kept.append(Frame(short, frame.lineno or 0, frame.name, (frame.line or "").strip()))
    return kept[-_FRAME_LIMIT:]
