"""One bf16-capable CUDA GPU, emulated on a CPU machine with tensors that hold no data.

The recipe must take the branches it takes on the GPU node (``device: cuda`` as written), so
torchtune's device helpers answer as on a GPU; every tensor asked for on ``cuda`` is made on the
CPU instead, as a ``FakeTensor``: shapes, dtypes and strides, no storage. A real-size 8B model
then costs a few hundred MB, and every shape rule of every operator still runs.

What a tensor without data cannot answer is answered here: ``.item()`` gives 1 (1.0, or a bool),
in-place random initialisation does nothing. Everything that raises is still torch's or
torchtune's own code. Only the child process that executes a recipe imports this module.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import re
import sys
import types
import weakref
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode, unset_fake_temporarily

aten = torch.ops.aten
CPU = torch.device("cpu")
_CUDA = re.compile(r"cuda(:\d+)?")
_THIS_FILE = __file__

# In-place random initialisation decomposes into ops that need a CUDA generator; with no data
# to fill, doing nothing is exact.
_RANDOM_INPLACE = frozenset(
    {
        aten.uniform_.default,
        aten.normal_.default,
        aten.random_.default,
        aten.random_.to,
        getattr(aten.random_, "from"),
        aten.exponential_.default,
        aten.bernoulli_.float,
        aten.geometric_.default,
        aten.log_normal_.default,
        aten.cauchy_.default,
    }
)


def on_cpu(value: Any) -> Any:
    """``value`` with a CUDA device (object or string) replaced by the CPU."""
    if isinstance(value, torch.device) and value.type == "cuda":
        return CPU
    if isinstance(value, str) and _CUDA.fullmatch(value):
        return CPU
    return value


class DatalessMode(FakeTensorMode):  # type: ignore[no-untyped-call]
    """``FakeTensorMode`` where CUDA tensors are made on the CPU and values have an answer.

    A fake *cuda* tensor aborts a CPU build of torch in autograd (there is no CUDA device
    guard), so the device is rewritten at dispatch, after torch's argument parser has accepted
    ``device="cuda"`` without initialising CUDA.
    """

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in _RANDOM_INPLACE:
            return args[0]
        if func is aten._pin_memory.default:  # page-locked memory (CPU offload): no data, no pages
            return args[0]
        if func is aten.is_nonzero.default:
            return _answer_bool()
        if func is aten._local_scalar_dense.default:
            tensor = args[0]
            if tensor.dtype == torch.bool:
                return _answer_bool()
            return 1.0 if tensor.is_floating_point() else 1
        kwargs = kwargs or {}
        if "device" in kwargs:
            kwargs = {**kwargs, "device": on_cpu(kwargs["device"])}
        return super().__torch_dispatch__(func, types, args, kwargs)


def _answer_bool() -> bool:
    """A fake bool has no value: True inside an ``assert`` (bounds checks such as the KV cache's
    hold), False elsewhere (``if stop_tokens_reached.all(): break``, NaN checks)."""
    frame = sys._getframe(2)
    while frame is not None and (
        "/torch/" in frame.f_code.co_filename or frame.f_code.co_filename == _THIS_FILE
    ):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return False
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return line.startswith("assert")


def new_mode() -> DatalessMode:
    """A fresh mode for one execution; tensors made outside it (data batches) may enter it."""
    mode = DatalessMode(allow_non_fake_inputs=True)
    _retry_swap_tensors(mode)
    return mode


def _retry_swap_tensors(mode: FakeTensorMode) -> None:
    """QLoRA's ``FrozenNF4Linear`` swaps its weight for an NF4 one with ``swap_tensors``, which
    refuses a tensor that the fake-tensor converter holds in a weak-value memo: drop that memo
    entry (a cache) and swap again."""
    real_swap = torch.utils.swap_tensors

    def swap_tensors(first: Any, second: Any) -> None:
        try:
            real_swap(first, second)  # type: ignore[no-untyped-call]
            return
        except RuntimeError as exc:
            if "weakref" not in str(exc):
                raise
        converter = mode.fake_tensor_converter.meta_converter
        for holder in (converter, getattr(converter, "describer", None)):
            for memo in vars(holder or object()).values():
                if isinstance(memo, weakref.WeakValueDictionary):
                    for key in [key for key, value in list(memo.items()) if value is first]:
                        del memo[key]
        real_swap(first, second)  # type: ignore[no-untyped-call]

    torch.utils.swap_tensors = swap_tensors


def _tensor_of_fakes() -> None:
    """``torch.tensor([fake, fake, ...])`` (Llama 3's RoPE scaling builds its frequencies in a
    Python loop) reads the values in C++: stack the fakes instead."""
    real_tensor = torch.tensor

    def tensor(data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, (list, tuple)) and data and isinstance(data[0], FakeTensor):
            stacked = torch.stack([torch.as_tensor(item) for item in data])
            return stacked.to(dtype=kwargs.get("dtype"), device=on_cpu(kwargs.get("device")))
        return real_tensor(data, *args, **kwargs)

    torch.tensor = tensor


class _NoCudaNamespace(types.SimpleNamespace):
    """What ``utils.get_torch_device_namespace()`` gives on a GPU node, answering zeros."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: 0


def emulate_one_gpu() -> None:
    """Make torchtune see one bf16-capable CUDA device; only its device helpers change.

    Raises:
        AttributeError: torchtune or torch no longer has what is patched (another version):
            the caller reports the harness as unable to check, never the config as wrong.
    """
    import torchtune.generation as generation
    import torchtune.training._activation_offloading as offloading
    import torchtune.training.precision as precision
    from torchtune import training, utils
    from torchtune.utils import _device

    real_get_device = _device.get_device

    def get_device(device: str | None = None) -> torch.device:
        wanted = torch.device(device) if device is not None else torch.device("cuda")
        if wanted.type == "cuda":  # the GPU node: no device given means CUDA there
            return torch.device("cuda", wanted.index or 0)
        found: torch.device = real_get_device(device)
        return found

    _replace(_device, "get_device", get_device)
    _replace(precision, "verify_bf16_support", lambda: True)
    zeros = {"peak_memory_active": 0.0, "peak_memory_alloc": 0.0, "peak_memory_reserved": 0.0}
    _replace(training, "get_memory_stats", lambda *args, **kwargs: dict(zeros))
    _replace(utils, "get_torch_device_namespace", lambda: _NoCudaNamespace())
    for name in ("_record_memory_history", "_dump_snapshot"):
        _replace(torch.cuda.memory, name, lambda *args, **kwargs: None)
    _replace(torch.cuda, "empty_cache", lambda: None)
    _replace(torch.cuda, "synchronize", lambda *args, **kwargs: None)
    # Offloading moves activations with CUDA streams; the recipe's own preconditions (a CUDA
    # device, activation checkpointing on) are still checked by the recipe itself.
    _replace(offloading, "OffloadActivations", lambda *args, **kwargs: contextlib.nullcontext())
    # torch.compile needs a real backend: compiling is skipped (and said so).
    _replace(training, "compile_model", lambda model, *args, **kwargs: model)
    _replace(training, "compile_loss", lambda loss, *args, **kwargs: loss)
    torch.compile = _no_compile
    # Fake bools never say "stop": two new tokens run the decode loop.
    real_generate = generation.generate

    def generate(*args: Any, max_generated_tokens: int, **kwargs: Any) -> Any:
        capped = min(max_generated_tokens, 2) if isinstance(max_generated_tokens, int) else 2
        return real_generate(*args, max_generated_tokens=capped, **kwargs)

    _replace(generation, "generate", generate)
    _tensor_of_fakes()
    _quantize_in_one_chunk()
    torch.Generator = _generator_on_cpu(torch.Generator)  # type: ignore[misc]


def emulate_processes() -> None:
    """Make a distributed recipe see the ``torchrun`` it runs under on the cluster: rank 0 of
    ``WORLD_SIZE`` processes (the caller sets the environment), whose collectives go to torch's
    own fake process group (no communication, every per-rank code path of FSDP runs), with
    device meshes on the CPU where the tensors really are.

    Raises:
        AttributeError: torch no longer has what is patched.
    """
    import torch.distributed as dist
    import torch.distributed.device_mesh as device_mesh
    from torch.testing._internal.distributed.fake_pg import FakeStore

    real_init = dist.init_process_group

    def init_process_group(*args: Any, **kwargs: Any) -> None:
        if "WORLD_SIZE" not in os.environ:  # not under torchrun: it fails here as it would
            real_init(*args, **kwargs)
            return
        world = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ.get("RANK", "0"))
        real_init("fake", store=FakeStore(), rank=rank, world_size=world)

    _replace(dist, "init_process_group", init_process_group)
    real_mesh = device_mesh.init_device_mesh

    def init_device_mesh(device_type: str, *args: Any, **kwargs: Any) -> Any:
        with unset_fake_temporarily():  # a mesh is a tensor of ranks, read for their values
            return real_mesh("cpu" if device_type == "cuda" else device_type, *args, **kwargs)

    for module in (device_mesh, dist):
        _replace(module, "init_device_mesh", init_device_mesh)
    _replace(dist, "destroy_process_group", lambda *args, **kwargs: None)
    _replace(torch.cuda, "set_device", lambda *args, **kwargs: None)


def _quantize_in_one_chunk() -> None:
    """torchao quantizes a weight to NF4 (QLoRA) a million values at a time, to bound real
    memory; a tensor without data has none to bound, and a 405B weight would take 900 rounds of
    the same ops. One chunk computes the same thing."""
    from torchao.dtypes import nf4tensor

    if not hasattr(nf4tensor, "CHUNK_SIZE"):
        raise AttributeError("torchao.dtypes.nf4tensor.CHUNK_SIZE is not there to change")
    nf4tensor.CHUNK_SIZE = 2**62


def _generator_on_cpu(real: type[torch.Generator]) -> type[torch.Generator]:
    """``torch.Generator(device="cuda")`` (PPO's sampling) needs CUDA: a CPU one stands in."""

    class Generator(real):  # type: ignore[valid-type,misc]
        def __new__(cls, device: Any = None) -> Any:
            if device is None:
                return real.__new__(cls)
            return real.__new__(cls, device=on_cpu(device))  # type: ignore[call-arg]

    return Generator


def _no_compile(model: Any = None, *args: Any, **kwargs: Any) -> Any:
    return model if model is not None else (lambda function: function)


def _replace(module: Any, name: str, value: Any) -> None:
    """``module.name = value``, and wherever a module (torch's, torchtune's) imported it by
    name, such as FSDP's own ``init_device_mesh``."""
    if not hasattr(module, name):
        raise AttributeError(f"{module.__name__}.{name} is not there to emulate")
    original = getattr(module, name)
    setattr(module, name, value)
    if not callable(original):
        return
    for loaded in list(sys.modules.values()):
        if getattr(loaded, name, None) is original:
            setattr(loaded, name, value)


def real_values() -> contextlib.AbstractContextManager[Any]:
    """Inside the mode, make real tensors (datasets, samplers and collators read values)."""
    return unset_fake_temporarily()
