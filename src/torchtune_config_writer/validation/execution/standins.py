"""Stand-ins for what a CI runner or a laptop does not have: weights, tokenizer files, data.

A stand-in must not hide a mistake the real part would show: weights are shaped from the model
the config builds (or read from the checkpoint's own header where the files exist), a tokenizer
file is of a format the configured tokenizer class really reads, and data rows are in the first
format the configured dataset's own message transform accepts. What a stand-in cannot judge is
named in the report as not checked here, and never counted as checked.
"""

from __future__ import annotations

import base64
import contextvars
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .emulation import real_values

ADAPTER_MARKERS = ("lora_a", "lora_b", "lora_magnitude", ".magnitude")
# Ids of the stand-in vocabularies stay below this; real special tokens keep their real ids.
_WORDS = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request. ### Instruction: "
    "### Input: ### Response: add the two numbers 3 and 4 7 is the answer 8 user assistant "
    "system human gpt question summary"
)


class StopRun(Exception):
    """The first checkpoint save: the run has set up and stepped, which is all it must do."""


class HarnessLimit(Exception):
    """Something the harness cannot stand in for: no verdict on the config."""


class TokenPastVocabulary(IndexError):
    """A real tokenizer gives an id the model's embedding does not have: the CPU's IndexError
    (a GPU's device-side assert), which a tensor without data cannot raise by itself."""


# --- tokenizer files ------------------------------------------------------------------------

# Arguments of torchtune's tokenizer builders that name files, and the stand-in each gets.
TOKENIZER_FILES = {
    "path": "main",
    "vocab_path": "vocab",
    "merges_file": "merges",
    "merges_path": "merges",
    "tokenizer_json_path": "tokenizer_json",
    "special_tokens_path": None,  # optional in every builder: left out
    "tokenizer_config_json_path": None,
    "generation_config_path": None,
}


def _pieces() -> list[bytes]:
    pieces = [bytes([i]) for i in range(256)]
    for word in dict.fromkeys(_WORDS.replace(".", " ").replace(",", " ").split()):
        for form in (word, " " + word):
            pieces += [form[:n].encode() for n in range(2, len(form) + 1)]
    return list(dict.fromkeys(pieces))


def tiktoken_file(folder: Path) -> Path:
    """A tiktoken BPE file: the 256 bytes and the prefixes of a few template words."""
    path = folder / "standin.tiktoken"
    if not path.exists():
        lines = [
            f"{base64.b64encode(piece).decode()} {rank}" for rank, piece in enumerate(_pieces())
        ]
        path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def sentencepiece_file(folder: Path) -> Path:
    """A SentencePiece BPE model with byte fallback, trained on the template words."""
    path = folder / "standin_sp.model"
    if not path.exists():
        import sentencepiece

        corpus = folder / "standin_corpus.txt"
        corpus.write_text((_WORDS + "\n") * 200, "utf-8")
        sentencepiece.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(folder / "standin_sp"),
            vocab_size=400,
            model_type="bpe",
            character_coverage=1.0,
            byte_fallback=True,
            hard_vocab_limit=False,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            minloglevel=2,
        )
    return path


def _byte_level() -> dict[int, str]:
    """GPT-2's byte-to-character table (what vocab.json and merges.txt are written in)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def bpe_files(folder: Path) -> tuple[Path, Path]:
    """A byte-level BPE pair (``vocab.json``, ``merges.txt``) of the 256 bytes and no merges."""
    vocab, merges = folder / "standin_vocab.json", folder / "standin_merges.txt"
    if not vocab.exists():
        table = _byte_level()
        vocab.write_text(json.dumps({table[b]: b for b in range(256)}), "utf-8")
        merges.write_text("#version: 0.2\n", "utf-8")
    return vocab, merges


def tokenizer_json_file(folder: Path) -> Path:
    """A Hugging Face ``tokenizer.json``: byte-level BPE of the 256 bytes."""
    path = folder / "standin_tokenizer.json"
    if not path.exists():
        table = _byte_level()
        model = {"type": "BPE", "vocab": {table[b]: b for b in range(256)}, "merges": []}
        document: dict[str, Any] = {
            "version": "1.0",
            "added_tokens": [],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
            "post_processor": None,
            "decoder": {"type": "ByteLevel"},
            "model": model,
        }
        path.write_text(json.dumps(document), "utf-8")
    return path


def tokenizer_formats(folder: Path) -> Iterator[tuple[str, dict[str, Path]]]:
    """Each stand-in format: its name and the file for each role, made on first use."""
    yield "tiktoken", {"main": tiktoken_file(folder)}
    yield "sentencepiece", {"main": sentencepiece_file(folder)}
    vocab, merges = bpe_files(folder)
    yield "byte-level BPE", {"main": vocab, "vocab": vocab, "merges": merges}
    yield (
        "tokenizer.json",
        {"main": tokenizer_json_file(folder), "tokenizer_json": tokenizer_json_file(folder)},
    )


def standin_tokenizer(
    build: Callable[..., Any], missing: list[str], folder: Path
) -> tuple[Any, str]:
    """The configured tokenizer class built on stand-in files for the ``missing`` arguments.

    Each format is tried in turn; the first that the class's own code reads and encodes with
    is the configured kind.

    Raises:
        HarnessLimit: no stand-in format fits the class.
    """
    tried = []
    for name, files in tokenizer_formats(folder):
        over: dict[str, Any] = {}
        for argument in missing:
            role = TOKENIZER_FILES[argument]
            found = files.get(role) if role is not None else None
            over[argument] = None if found is None else str(found)
        if any(value is None and TOKENIZER_FILES[arg] is not None for arg, value in over.items()):
            continue
        try:
            tokenizer = build(**over)
            _encodes(tokenizer)
        except Exception as exc:  # noqa: BLE001 - not the format this class reads
            tried.append(f"{name}: {type(exc).__name__}")
            continue
        return tokenizer, name
    raise HarnessLimit(f"no stand-in tokenizer file fits ({'; '.join(tried)})")


def _encodes(tokenizer: Any) -> None:
    encode = getattr(tokenizer, "encode", None)
    if encode is None:  # a model transform: its tokenizer encodes
        encode = tokenizer.tokenizer.encode
    try:
        encode("add the two numbers", add_bos=True, add_eos=True)
    except TypeError:
        encode("add the two numbers")


def safe_decode(tokenizer: Any) -> None:
    """A stand-in vocabulary lacks ids a model may emit: decode only the ones it has."""
    real_decode = tokenizer.decode

    def decode(ids: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return real_decode(ids, *args, **kwargs)
        except Exception:  # noqa: BLE001 - an id the stand-in has not
            return real_decode([i for i in ids if i < 256], *args, **kwargs)

    tokenizer.decode = decode


# --- data -----------------------------------------------------------------------------------

_USER = "add the two numbers 3 and 4"
# Long enough answers that a few rows fill a pack of a packed dataset.
_GOOD, _BAD = "7 is the answer. " * 12, "8 is the answer. " * 12
ROW_TOKENS = 64  # the fewest tokens a made-up row gives, with any stand-in tokenizer
_CANDIDATES: tuple[dict[str, Any], ...] = (
    {"instruction": _USER, "input": "3 4", "output": _GOOD},
    {"input": _USER, "output": _GOOD},
    {"conversations": [{"from": "human", "value": _USER}, {"from": "gpt", "value": _GOOD}]},
    {"messages": [{"role": "user", "content": _USER}, {"role": "assistant", "content": _GOOD}]},
    {
        "chosen": [{"role": "user", "content": _USER}, {"role": "assistant", "content": _GOOD}],
        "rejected": [{"role": "user", "content": _USER}, {"role": "assistant", "content": _BAD}],
    },
    {"prompt": _USER, "chosen": _GOOD, "rejected": _BAD},
    {"question": _USER, "answer": _GOOD, "text": f"{_USER} {_GOOD}"},
    {"instruction": _USER, "response": _GOOD},
    {"document": _USER, "summary": _GOOD, "dialogue": _USER},
)
LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow"})
# The dataset class being built, so that load_dataset knows which rows it must make.
_BUILDING: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "building", default=None
)


class DataPlan:
    """How many rows a dataset needs for one optimizer step, and whether files are real."""

    def __init__(self, rows: int = 2, real: bool = False) -> None:
        self.rows = rows
        self.real = real  # every dataset read for real (preflight, on the machine with the data)
        self.made_up = 0  # datasets made up so far in this run


def patch_datasets(plan: DataPlan) -> None:
    """torchtune's dataset classes read their rows through ``load_dataset``: local files are
    read for real (the first rows), hub data is made up in a format the class accepts."""
    import torchtune.datasets._preference as preference
    import torchtune.datasets._sft as sft
    import torchtune.datasets._text_completion as text_completion

    for module, cls in (
        (sft, sft.SFTDataset),
        (preference, preference.PreferenceDataset),
        (text_completion, text_completion.TextCompletionDataset),
    ):
        module.load_dataset = _load_dataset(module.load_dataset, plan)
        _record_building(cls)


def _record_building(cls: type) -> None:
    init = vars(cls)["__init__"]
    signature = inspect.signature(init)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind_partial(self, *args, **kwargs).arguments
        info: dict[str, Any] = {"message_transform": bound.get("message_transform")}
        if "column" in signature.parameters:
            info = {"column": bound.get("column", "text")}
        token = _BUILDING.set(info)
        try:
            init(self, *args, **kwargs)
        finally:
            _BUILDING.reset(token)

    setattr(cls, "__init__", __init__)  # noqa: B010 - the class is a parameter


def _files_here(source: Any, kwargs: dict[str, Any]) -> bool:
    """Whether the data is on this machine: a local builder whose files all exist, or a path."""
    if source not in LOCAL_BUILDERS:
        return Path(str(source)).exists()
    files = kwargs.get("data_files")
    named = files.values() if isinstance(files, dict) else [files]
    paths = [p for group in named for p in ([group] if isinstance(group, str) else group or [])]
    return bool(paths) and all(Path(str(p)).exists() or "*" in str(p) for p in paths)


def _load_dataset(real_load: Callable[..., Any], plan: DataPlan) -> Callable[..., Any]:
    def load_dataset(source: Any, *args: Any, **kwargs: Any) -> Any:
        with real_values():
            if plan.real or _files_here(source, kwargs):
                # The data is here: read for real, so a split or column it lacks fails as it
                # would (on the machine that trains, missing files fail as they would too).
                data = real_load(source, *args, **kwargs)
                if hasattr(data, "select") and len(data) > plan.rows:
                    data = data.select(range(plan.rows))
                return data
            return _made_up(source, plan)

    return load_dataset


def _made_up(source: Any, plan: DataPlan) -> Any:
    import datasets

    info = _BUILDING.get() or {}
    if "column" in info:  # text completion
        rows = [{info["column"]: f"{_USER} {_GOOD} {i}"} for i in range(plan.rows)]
    else:
        transform = info.get("message_transform")
        column_map = getattr(transform, "_column_map", None) or {}
        row = None
        for candidate in _CANDIDATES:
            trial = {column_map.get(key, key): value for key, value in candidate.items()}
            try:
                transform(dict(trial))  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - not the format this transform reads
                continue
            row = trial
            break
        if row is None:
            raise HarnessLimit(f"no made-up row fits {type(transform).__name__} for {source}")
        rows = [dict(row) for _ in range(plan.rows)]
    plan.made_up += 1
    return datasets.Dataset.from_list(rows)


# --- checkpoints ----------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}


def header_only_load(path: Any, weights_only: bool = True, mmap: bool = True) -> Any:
    """torchtune's ``safe_torch_load`` without reading weights: keys, shapes and dtypes from a
    safetensors header, or from a memory-mapped ``torch.load`` whose pages are never touched;
    the tensors are empty (fake ones inside the mode)."""
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open

        shapes = {}
        with real_values(), safe_open(str(path), framework="pt", device="cpu") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                piece = handle.get_slice(key)
                shapes[key] = (tuple(piece.get_shape()), _SAFETENSORS_DTYPES[piece.get_dtype()])
        return {key: torch.empty(shape, dtype=dtype) for key, (shape, dtype) in shapes.items()}
    with real_values():
        loaded = torch.load(str(path), map_location="cpu", mmap=True, weights_only=weights_only)
        described = {
            key: (tuple(value.shape), value.dtype) if isinstance(value, torch.Tensor) else value
            for key, value in loaded.items()
        }
    return {
        key: torch.empty(value[0], dtype=value[1])
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], torch.dtype)
        else value
        for key, value in described.items()
    }


class StandInCheckpointer:
    """A checkpointer whose files are not on this machine: it loads a base checkpoint with the
    exact keys and shapes of the model the config builds (LoRA and DoRA keys dropped, as a real
    base checkpoint has none), and ends the run at its first save."""

    def __init__(self, build_model: Callable[[], Any], key: str) -> None:
        self._build_model = build_model
        self._key = key

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from torchtune import training

        try:
            model = self._build_model()
        except Exception:  # noqa: BLE001 - the recipe builds the same node next and raises
            return {training.MODEL_KEY: {}}
        state = {
            key: value.detach()
            for key, value in model.state_dict().items()
            if not any(marker in key for marker in ADAPTER_MARKERS)
        }
        del model
        return {training.MODEL_KEY: state}

    def save_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        raise StopRun(self._key)


def stop_at_save(checkpointer: Any, key: str) -> Any:
    """A real checkpointer that ends the run at its first save instead of writing."""

    def save_checkpoint(*args: Any, **kwargs: Any) -> None:
        raise StopRun(key)

    checkpointer.save_checkpoint = save_checkpoint
    return checkpointer


class NullLogger:
    """A metric logger that logs nothing (its real class was imported and its arguments
    bound, and what it imports is installed)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None
