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
import io
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

from . import emulation, standins
from .protocol import DELETE, Frame, Mode, Outcome, Request, Status
from .shrink import build_tiny

# The torchtune whose internals are patched: another version is not checked (the canary test
# in tests/test_execution.py fails loudly when an upgrade breaks the harness).
SUPPORTED_TORCHTUNE = "0.6."
OUTPUT_KEYS = frozenset({"output_dir", "log_dir"})
_FRAME_LIMIT = 12
_MESSAGE_LIMIT = 2000
_HERE = str(Path(__file__).parent)
_TORCH = str(Path(torch.__file__).parent)
_ENV = re.compile(r"\$\{oc\.env:([^,}]+)")


class _State:
    """What the patched functions need to know about the current execution."""

    def __init__(self) -> None:
        self.request: Request | None = None
        self.standins: list[str] = []
        self.work = Path(".")
        self.building: list[tuple[str | int, ...]] = []
        self.raised_building: tuple[str | int, ...] | None = None
        self.trains = False
        self.steps = 0
        self.shrunk = False
        self.largest_token = -1
        self.unset: list[str] = []  # environment variables the config reads, not set here
        self.tokenizer_stood_in = False  # its ids are not the real ones
        self.data = standins.DataPlan()


STATE = _State()
_INSTALLED: list[bool] = []


def install(work: Path) -> None:
    """Apply every patch, once per process (the worker does it before forking).

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
    STATE.work = work
    try:
        emulation.emulate_one_gpu()
        emulation.emulate_processes()
        standins.patch_datasets(STATE.data)
        _patch_instantiate()
        _patch_checkpoint_loading()
        _count_steps()
        _check_token_ids()
    except AttributeError as exc:
        raise standins.HarnessLimit(f"torchtune {torchtune.__version__}: {exc}") from None
    torch.save = _no_save
    _INSTALLED.append(True)


def execute(request: Request, work: Path) -> Outcome:
    """Run one request (in a child process: it changes the working folder and sys.argv)."""
    start = time.perf_counter()
    STATE.request, STATE.standins, STATE.work = request, [], work
    STATE.building, STATE.raised_building = [], None
    STATE.trains, STATE.steps, STATE.shrunk, STATE.largest_token = False, 0, False, -1
    STATE.tokenizer_stood_in = False
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
    for keypath, node in list(_output_leaves(cfg)):
        node[keypath[-1]] = str(work / "out" / ".".join(map(str, keypath)))
    if request.mode is Mode.SHAPE:
        # Real shapes need one micro-batch; the values run takes the real number of them.
        steps = cfg.get("gradient_accumulation_steps") if isinstance(cfg, DictConfig) else None
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 1:
            OmegaConf.update(cfg, "gradient_accumulation_steps", 1)
    STATE.unset = _missing_environment(cfg)
    for name in STATE.unset:
        # Set on the cluster, not here: a path that does not exist here stands in for it (a
        # failure may then be the stand-in's: it is unverified, not an error).
        os.environ[name] = f"/nonexistent-here/{name}"
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
    """Every ``output_dir``/``log_dir`` written as a plain string (an interpolation follows the
    value it names, which is moved itself)."""
    if isinstance(node, DictConfig):
        for key in node:
            child = node._get_node(key)
            value = child._value() if child is not None else None
            if str(key) in OUTPUT_KEYS and isinstance(value, str) and "${" not in value:
                yield (*keypath, str(key)), node
            elif isinstance(value, (DictConfig, ListConfig)):
                yield from _output_leaves(value, (*keypath, str(key)))
    elif isinstance(node, ListConfig):
        for index, value in enumerate(node._iter_ex(resolve=False)):
            if isinstance(value, (DictConfig, ListConfig)):
                yield from _output_leaves(value, (*keypath, index))


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


# --- building config nodes ------------------------------------------------------------------


def _patch_instantiate() -> None:
    from torchtune import config
    from torchtune.training.checkpointing._checkpointer import _CheckpointerInterface
    from torchtune.training.metric_logging import MetricLoggerInterface

    real = config.instantiate

    def instantiate(node: Any, *args: Any, **kwargs: Any) -> Any:
        if not (OmegaConf.is_dict(node) and "_component_" in node):
            return real(node, *args, **kwargs)
        key = node._get_full_key(None)
        keypath = tuple(int(p) if p.isdigit() else p for p in str(key).split(".")) if key else ()
        STATE.building.append(keypath)
        try:
            return _build(
                real, node, keypath, args, kwargs, _CheckpointerInterface, MetricLoggerInterface
            )
        except BaseException as exc:
            if STATE.raised_building is None:
                STATE.raised_building = keypath
            raise exc
        finally:
            STATE.building.pop()

    config.instantiate = instantiate


def _inherits(component: Any, base: type) -> bool:
    # These bases are typing Protocols: issubclass() refuses them.
    return inspect.isclass(component) and base in component.__mro__


def _build(
    real: Callable[..., Any],
    node: Any,
    keypath: tuple[str | int, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    checkpointer: type,
    logger: type,
) -> Any:
    from torchtune.config._utils import _get_component_from_path

    path = node.get("_component_")
    component = _get_component_from_path(path)  # a wrong path raises as under tune run
    name = str(keypath[-1]) if keypath else ""
    if _inherits(component, checkpointer):
        return _checkpointer(real, node, keypath, component, args, kwargs)
    if _inherits(component, logger):
        resolved = _arguments(node, kwargs)
        inspect.signature(component).bind(*args, **resolved)
        _require_imports(component)
        return standins.NullLogger()
    if "tokenizer" in name or "tokenizer" in str(path).rsplit(".", 1)[-1]:
        return _tokenizer(real, node, keypath, args, kwargs)
    request = STATE.request
    if request is not None and request.mode is Mode.VALUES and name.endswith("model"):
        model, shrunk = build_tiny(component, _arguments(node, kwargs))
        STATE.shrunk = STATE.shrunk or shrunk
        return model
    made_up = STATE.data.made_up
    built = real(node, *args, **kwargs)
    if STATE.data.made_up > made_up:
        STATE.standins.append(f"{_dotted(keypath)}: made-up rows in the format it reads")
    return built


def _arguments(node: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    resolved = OmegaConf.to_container(node, resolve=True)
    assert isinstance(resolved, dict)
    resolved.pop("_component_", None)
    return {**{str(k): v for k, v in resolved.items()}, **kwargs}


def _dotted(keypath: tuple[str | int, ...]) -> str:
    return ".".join(map(str, keypath))


def _checkpointer(
    real: Callable[..., Any],
    node: Any,
    keypath: tuple[str | int, ...],
    component: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    from torchtune import config

    resolved = _arguments(node, kwargs)
    root = node._get_root()
    name = str(keypath[-1]) if keypath else "checkpointer"
    model_key = _model_of(name, root)
    model_node = root.get(model_key)

    def build_model() -> Any:
        from torchtune import training

        with training.set_default_dtype(torch.bfloat16):
            return config.instantiate(model_node)

    folder = resolved.get("checkpoint_dir")
    here = isinstance(folder, str) and Path(folder).is_dir()
    request = STATE.request
    real_files = request is not None and request.real_files
    if here or real_files:
        tiny_run = request is not None and request.mode is Mode.VALUES
        if not (tiny_run and _shrinks(build_model)):
            return standins.stop_at_save(real(node, *args, **kwargs), name)
    inspect.signature(component).bind(*args, **resolved)
    model_type = resolved.get("model_type")
    if model_type is not None:
        from torchtune.training.checkpointing._utils import ModelType

        ModelType[model_type]  # an unknown model type fails as the real checkpointer does
    if not here:
        STATE.standins.append(f"{_dotted(keypath)}: weights shaped from {model_key}")
    return standins.StandInCheckpointer(build_model, name)


def _model_of(checkpointer: str, root: Any) -> str:
    """The model node a checkpointer loads: ``teacher_checkpointer`` → ``teacher_model``,
    PPO's ``value_checkpointer`` → ``reward_and_value_model``; ``model`` for ``checkpointer``."""
    models = [
        str(key)
        for key in root
        if str(key).endswith("model") and OmegaConf.is_dict(root._get_node(key))
    ]
    words = set(checkpointer.removesuffix("checkpointer").split("_")) - {""}

    def score(key: str) -> tuple[int, bool]:
        return len(words & set(key.split("_"))), key == "model"

    return max(models, key=score) if models else "model"


def _shrinks(build_model: Callable[[], Any]) -> bool:
    """Whether the values run builds this model at a tiny size (then real weights cannot load)."""
    before = STATE.shrunk
    STATE.shrunk = False
    try:
        build_model()
        return STATE.shrunk
    except Exception:  # noqa: BLE001 - the recipe builds it next and raises there
        return False
    finally:
        STATE.shrunk = STATE.shrunk or before


def _require_imports(component: Any) -> None:
    """What a logger imports when it is made must be installed (wandb, comet_ml, mlflow...)."""
    try:
        source = inspect.getsource(component.__init__)
    except (OSError, TypeError):
        return
    for name in re.findall(r"^\s*(?:import|from)\s+(\w+)", source, re.MULTILINE):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)


def _tokenizer(
    real: Callable[..., Any],
    node: Any,
    keypath: tuple[str | int, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    resolved = _arguments(node, kwargs)
    request = STATE.request
    missing = [
        argument
        for argument in standins.TOKENIZER_FILES
        if isinstance(resolved.get(argument), str) and not Path(resolved[argument]).exists()
    ]
    if not missing or (request is not None and request.real_files):
        return real(node, *args, **kwargs)
    folder = STATE.work / "tokenizer"
    folder.mkdir(parents=True, exist_ok=True)

    def build(**over: Any) -> Any:
        return real(node, *args, **{**kwargs, **over})

    tokenizer, kind = standins.standin_tokenizer(build, missing, folder)
    STATE.tokenizer_stood_in = True
    standins.safe_decode(tokenizer)
    STATE.standins += [f"{_dotted(keypath)}.{argument}: a {kind} file" for argument in missing]
    return tokenizer


# --- what happens while it runs -------------------------------------------------------------


def _patch_checkpoint_loading() -> None:
    import torchtune.training.checkpointing._checkpointer as checkpointing

    if not hasattr(checkpointing, "safe_torch_load"):
        raise AttributeError("torchtune's checkpointer no longer loads with safe_torch_load")
    checkpointing.safe_torch_load = standins.header_only_load


def _no_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
    """``torch.save`` of data-less tensors: an empty file where the recipe writes it."""
    if isinstance(f, (str, os.PathLike)):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).write_bytes(b"")


def _count_steps() -> None:
    from torch.optim.optimizer import Optimizer, register_optimizer_step_post_hook

    def stepped(*args: Any) -> None:
        STATE.steps += 1

    register_optimizer_step_post_hook(stepped)
    real_init = Optimizer.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        STATE.trains = True
        real_init(self, *args, **kwargs)

    Optimizer.__init__ = __init__  # type: ignore[method-assign]


def _check_token_ids() -> None:
    """A token id past the model's vocabulary: an IndexError on the CPU, a device-side assert
    on a GPU; a tensor without data cannot tell, so the ids of the real batches are kept."""
    from torchdata.stateful_dataloader import StatefulDataLoader
    from torchtune.modules import TransformerDecoder

    real_iter = StatefulDataLoader.__iter__

    def __iter__(self: Any) -> Any:
        with emulation.real_values():
            batches = real_iter(self)
        while not STATE.steps:  # one optimizer step is all a run must take: the epoch ends
            with emulation.real_values():
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                STATE.largest_token = max(STATE.largest_token, _largest_token(batch))
            yield batch

    StatefulDataLoader.__iter__ = __iter__
    real_forward = TransformerDecoder.forward

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        embeddings = getattr(self, "tok_embeddings", None)
        size = getattr(embeddings, "num_embeddings", None)
        if isinstance(size, int) and STATE.largest_token >= size and not STATE.tokenizer_stood_in:
            raise standins.TokenPastVocabulary(
                f"token id {STATE.largest_token} is past the model's vocabulary of {size}: "
                "index out of range in self"
            )
        return real_forward(self, *args, **kwargs)

    TransformerDecoder.forward = forward


def _largest_token(batch: Any) -> int:
    largest = -1
    items = (
        batch.items()
        if isinstance(batch, dict)
        else enumerate(batch)
        if isinstance(batch, (list, tuple))
        else []
    )
    for key, value in items:
        if isinstance(value, torch.Tensor) and not value.is_floating_point() and value.numel():
            if "label" not in str(key) and "mask" not in str(key):
                largest = max(largest, int(value.max()))
        elif isinstance(value, (dict, list, tuple)):
            largest = max(largest, _largest_token(value))
    return largest


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


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what a recipe prints (a child's output goes to its log file instead)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield
