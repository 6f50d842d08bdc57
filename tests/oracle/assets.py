"""Everything a tiny torchtune run needs, made locally: nothing is downloaded.

    <root>/assets/corpus.txt        synthetic text the tokenizer is trained on
    <root>/assets/tokenizer.model   SentencePiece BPE (vocab 256, unk 0, bos 1, eos 2), read by
                                    torchtune.models.llama2.llama2_tokenizer
    <root>/assets/alpaca_tiny.json  16 alpaca-style records (instruction / input / output)
    <root>/assets/ckpt/model.pt     a random state dict of the non-LoRA tiny llama2, the format
                                    FullModelTorchTuneCheckpointer reads (plain torch.save)
    <root>/assets/pref_tiny.json    16 preference records (chosen / rejected message lists)
    <root>/assets/wide/model.pt     a 2-layer, 128-dim llama2 (4 kv heads): the KD teacher, and
                                    the QLoRA base (NF4 needs weights of a multiple of 16384)
    <root>/base_<kind>.yaml         a tiny config per recipe: full, lora, qlora, dpo, kd,
                                    generate, dev/generate_v2, quantize (RECIPES)

Adapted from the tiny-training-on-slurm reference. The checkpoint is made from the non-LoRA model
on purpose: a LoRA run loads base weights and creates its adapters itself, and a checkpoint
holding rank-4 adapters would fail a rank-2 run. Making it takes torch and torchtune, which the
caller has imported anyway (validation needs them); the tokenizer and dataset need neither.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

FULL = "full"
LORA = "lora"
QLORA = "qlora"
DPO = "dpo"
KD = "kd"
GENERATE = "generate"
GENERATE_V2 = "generate_v2"
QUANTIZE = "quantize"
RECIPES = {
    FULL: "full_finetune_single_device",
    LORA: "lora_finetune_single_device",
    QLORA: "lora_finetune_single_device",
    DPO: "lora_dpo_single_device",
    KD: "knowledge_distillation_single_device",
    GENERATE: "generate",
    GENERATE_V2: "dev/generate_v2",
    QUANTIZE: "quantize",
}
TRAINING = (FULL, LORA, QLORA, DPO, KD)

_VOCABULARY = (
    "the a an model data train test small large quick slow red blue green cat dog bird tree "
    "river city code file list number word text token batch step loss learn write read sort "
    "count add find make give take show tell keep move open close run stop good bad new old "
    "first last next other same each every many few one two three four five six seven eight "
    "nine ten is are was be has have do does can will would should"
)
_WORDS = _VOCABULARY.split()
# Strings of the alpaca prompt and the Llama2 chat template: the tokenizer should know them.
_TEMPLATE_TEXT = [
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.",
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.",
    "### Instruction:",
    "### Input:",
    "### Response:",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
]

# What both tiny bases share after their model and checkpointer: 2 steps of batch 2 on CPU.
_COMMON = """\
tokenizer:
  _component_: torchtune.models.llama2.llama2_tokenizer
  path: ${base_dir}/assets/tokenizer.model
  max_seq_len: 64
  prompt_template: null

dataset:
  _component_: torchtune.datasets.alpaca_dataset
  source: json
  data_files: ${base_dir}/assets/alpaca_tiny.json
  split: train
  packed: false
seed: 0
shuffle: true
"""

_TRAINING = """\
batch_size: 2
epochs: 1
max_steps_per_epoch: 2
gradient_accumulation_steps: 1
optimizer:
  _component_: torch.optim.AdamW
  lr: 1e-3
"""

_TAIL = """\
loss:
  _component_: torchtune.modules.loss.CEWithChunkedOutputLoss
clip_grad_norm: null
compile: false

device: cpu
dtype: fp32
enable_activation_checkpointing: false
enable_activation_offloading: false

metric_logger:
  _component_: torchtune.training.metric_logging.DiskLogger
  log_dir: ${output_dir}/logs
log_every_n_steps: 1
log_peak_memory_stats: false
"""

_MODEL_DIMS = """\
  vocab_size: 256
  num_layers: 2
  num_heads: 4
  num_kv_heads: 2
  embed_dim: 64
  max_seq_len: 128
"""

BASE_FULL_BODY = f"""\
output_dir: ${{base_dir}}/out/full_base

model:
  _component_: torchtune.models.llama2.llama2
{_MODEL_DIMS}
{_COMMON}
checkpointer:
  _component_: torchtune.training.FullModelTorchTuneCheckpointer
  checkpoint_dir: ${{base_dir}}/assets/ckpt
  checkpoint_files: [model.pt]
  recipe_checkpoint: null
  output_dir: ${{output_dir}}
  model_type: LLAMA2
resume_from_checkpoint: false

{_TRAINING}optimizer_in_bwd: false
{_TAIL}"""

BASE_LORA_BODY = f"""\
output_dir: ${{base_dir}}/out/lora_base

model:
  _component_: torchtune.models.llama2.lora_llama2
  lora_attn_modules: [q_proj, v_proj, output_proj]
  apply_lora_to_mlp: true
  apply_lora_to_output: false
  lora_rank: 4
  lora_alpha: 8
  lora_dropout: 0.0
{_MODEL_DIMS}
{_COMMON}
checkpointer:
  _component_: torchtune.training.FullModelTorchTuneCheckpointer
  checkpoint_dir: ${{base_dir}}/assets/ckpt
  checkpoint_files: [model.pt]
  adapter_checkpoint: null
  recipe_checkpoint: null
  output_dir: ${{output_dir}}
  model_type: LLAMA2
resume_from_checkpoint: false
save_adapter_weights_only: false

{_TRAINING}lr_scheduler:  # the LoRA recipe requires one; 0 cycles keep the lr constant
  _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
  num_warmup_steps: 0
  num_cycles: 0.0
{_TAIL}"""


_LORA_MODEL = """\
  lora_attn_modules: [q_proj, v_proj, output_proj]
  apply_lora_to_mlp: true
  apply_lora_to_output: false
  lora_rank: 4
  lora_alpha: 8
  lora_dropout: 0.0
"""

_WIDE_DIMS = """\
  vocab_size: 256
  num_layers: 2
  num_heads: 4
  num_kv_heads: 4
  embed_dim: 128
  max_seq_len: 128
"""


def _checkpointer(folder: str, key: str = "checkpointer", adapter: bool = False) -> str:
    lines = [
        f"{key}:",
        "  _component_: torchtune.training.FullModelTorchTuneCheckpointer",
        f"  checkpoint_dir: ${{base_dir}}/assets/{folder}",
        "  checkpoint_files: [model.pt]",
        *(["  adapter_checkpoint: null"] if adapter else []),
        "  recipe_checkpoint: null",
        "  output_dir: ${output_dir}",
        "  model_type: LLAMA2",
    ]
    return "\n".join(lines) + "\n"


_LORA_TRAINING = f"""\
resume_from_checkpoint: false
save_adapter_weights_only: false

{_TRAINING}lr_scheduler:  # the LoRA recipes require one; 0 cycles keep the lr constant
  _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
  num_warmup_steps: 0
  num_cycles: 0.0
"""

# DPO's loss takes no clipping setting; the KD recipe has no activation offloading.
_DPO_TAIL = _TAIL.replace(
    "torchtune.modules.loss.CEWithChunkedOutputLoss", "torchtune.rlhf.loss.DPOLoss"
).replace("clip_grad_norm: null\n", "")
_KD_TAIL = _TAIL.replace("enable_activation_offloading: false\n", "")

BASE_QLORA_BODY = f"""\
output_dir: ${{base_dir}}/out/qlora_base

model:
  _component_: torchtune.models.llama2.lora_llama2
{_LORA_MODEL}  quantize_base: true
{_WIDE_DIMS}
{_COMMON}
{_checkpointer("wide", adapter=True)}{_LORA_TRAINING}{_TAIL}"""

BASE_DPO_BODY = f"""\
output_dir: ${{base_dir}}/out/dpo_base

model:
  _component_: torchtune.models.llama2.lora_llama2
{_LORA_MODEL}{_MODEL_DIMS}
tokenizer:
  _component_: torchtune.models.llama2.llama2_tokenizer
  path: ${{base_dir}}/assets/tokenizer.model
  max_seq_len: 64
  prompt_template: null

dataset:
  _component_: torchtune.datasets.preference_dataset
  source: json
  data_files: ${{base_dir}}/assets/pref_tiny.json
  split: train
seed: 0
shuffle: true
{_checkpointer("ckpt", adapter=True)}{_LORA_TRAINING}{_DPO_TAIL}"""

BASE_KD_BODY = f"""\
output_dir: ${{base_dir}}/out/kd_base

model:
  _component_: torchtune.models.llama2.lora_llama2
{_LORA_MODEL}{_MODEL_DIMS}
teacher_model:
  _component_: torchtune.models.llama2.llama2
{_WIDE_DIMS}
{_COMMON}
{_checkpointer("ckpt", adapter=True)}
{_checkpointer("wide", "teacher_checkpointer")}{_LORA_TRAINING}\
kd_loss:
  _component_: torchtune.modules.loss.ForwardKLWithChunkedOutputLoss
kd_ratio: 0.5
{_KD_TAIL}"""

BASE_GENERATE_BODY = f"""\
output_dir: ${{base_dir}}/out/generate_base

model:
  _component_: torchtune.models.llama2.llama2
{_MODEL_DIMS}
{_checkpointer("ckpt")}
tokenizer:
  _component_: torchtune.models.llama2.llama2_tokenizer
  path: ${{base_dir}}/assets/tokenizer.model
  max_seq_len: 64
  prompt_template: null

device: cpu
dtype: fp32
seed: 1234
prompt:
  system: null
  user: "add the two numbers 3 4"
max_new_tokens: 8
temperature: 0.6
top_k: 50
enable_kv_cache: true
quantizer: null
"""

BASE_GENERATE_V2_BODY = f"""\
output_dir: ${{base_dir}}/out/generate_v2_base

model:
  _component_: torchtune.models.llama2.llama2
{_MODEL_DIMS}
{_checkpointer("ckpt")}
tokenizer:
  _component_: torchtune.models.llama2.llama2_tokenizer
  path: ${{base_dir}}/assets/tokenizer.model
  max_seq_len: 64

device: cpu
dtype: fp32
seed: 1234
log_level: INFO
prompt:
  system: null
  user: "add the two numbers 3 4"
max_new_tokens: 8
temperature: 0.6
top_k: 50
"""

BASE_QUANTIZE_BODY = f"""\
output_dir: ${{base_dir}}/out/quantize_base

model:
  _component_: torchtune.models.llama2.llama2
{_MODEL_DIMS}
{_checkpointer("ckpt")}
device: cpu
dtype: fp32
seed: 1234
quantizer:
  _component_: torchtune.training.quantization.Int8DynActInt4WeightQuantizer
  groupsize: 32
"""

_BODIES = {
    QLORA: BASE_QLORA_BODY,
    DPO: BASE_DPO_BODY,
    KD: BASE_KD_BODY,
    GENERATE: BASE_GENERATE_BODY,
    GENERATE_V2: BASE_GENERATE_V2_BODY,
    QUANTIZE: BASE_QUANTIZE_BODY,
}


@dataclass(frozen=True)
class Assets:
    """Where :func:`build_assets` put everything.

    Attributes:
        root: The folder given; the bases' ``base_dir``.
        tokenizer: The SentencePiece model.
        dataset: The alpaca-style JSON file.
        checkpoint: The random checkpoint of the tiny llama2.
        bases: The tiny base config of each kind (``RECIPES``).
    """

    root: Path
    tokenizer: Path
    dataset: Path
    checkpoint: Path
    bases: dict[str, Path]


def build_assets(root: Path) -> Assets:
    """Make the tokenizer, dataset, both base configs and the checkpoint under ``root``."""
    root = root.resolve()
    folder = root / "assets"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)  # the same assets every time
    tokenizer = make_tokenizer(folder, rng)
    dataset = make_dataset(folder, rng)
    make_preference_dataset(folder, rng)
    bases = {kind: write_base(root, kind) for kind in RECIPES}
    checkpoint = make_checkpoint(folder, bases[FULL])
    make_checkpoint(folder, bases[KD], "teacher_model", "wide")
    return Assets(root, tokenizer, dataset, checkpoint, bases)


def base_text(root: Path, kind: str) -> str:
    """The tiny base config of ``kind`` with ``base_dir`` set to ``root`` (absolute)."""
    body = {FULL: BASE_FULL_BODY, LORA: BASE_LORA_BODY, **_BODIES}[kind]
    header = (
        f"# Tiny CPU {kind} config for torchtune 0.6.1 (tests/oracle/assets.py): no downloads.\n"
        f"# tune run {RECIPES[kind]} --config base_{kind}.yaml\n"
    )
    # JSON's double-quoted string is valid YAML, whatever characters the path holds.
    return f"{header}base_dir: {json.dumps(str(root))}\n{body}"


def write_base(root: Path, kind: str) -> Path:
    """Write ``base_<kind>.yaml`` into ``root``; its path."""
    path = root / f"base_{kind}.yaml"
    path.write_text(base_text(root, kind), encoding="utf-8")
    return path


def _sentence(rng: random.Random, low: int = 4, high: int = 12) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def make_tokenizer(folder: Path, rng: random.Random, vocab_size: int = 256) -> Path:
    """Train a SentencePiece BPE model on a synthetic corpus; the ``.model`` file.

    The id layout is llama2's (unk 0, bos 1, eos 2, no pad: torchtune sets pad_id 0 itself).
    ``hard_vocab_limit=False`` lets the tiny corpus give fewer pieces than ``vocab_size``.
    """
    import sentencepiece as spm

    corpus = folder / "corpus.txt"
    marks = [".", "?", "!", ":", ","]
    lines = _TEMPLATE_TEXT * 20 + [_sentence(rng) + rng.choice(marks) for _ in range(3000)]
    lines += ["".join(rng.choice("0123456789+-*/=()'\"") for _ in range(12)) for _ in range(200)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prefix = folder / "tokenizer"
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        byte_fallback=False,
        hard_vocab_limit=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    (folder / "tokenizer.vocab").unlink(missing_ok=True)
    return prefix.with_suffix(".model")


def make_dataset(folder: Path, rng: random.Random, records: int = 16) -> Path:
    """Write ``records`` alpaca-style records (half of them with an input); the JSON file."""
    data = []
    for index in range(records):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        data.append(
            {
                "instruction": rng.choice(
                    ["add the two numbers", "repeat the text", "count the words"]
                ),
                "input": f"{a} {b} " + _sentence(rng, 2, 6) if index % 2 == 0 else "",
                "output": f"{a + b} " + _sentence(rng, 3, 8),
            }
        )
    path = folder / "alpaca_tiny.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def make_preference_dataset(folder: Path, rng: random.Random, records: int = 16) -> Path:
    """Write ``records`` preference records: a chosen and a rejected conversation each."""
    data = []
    for _ in range(records):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        question = [{"role": "user", "content": f"add the two numbers {a} {b}"}]
        data.append(
            {
                "chosen": [*question, {"role": "assistant", "content": f"{a + b} is the sum"}],
                "rejected": [
                    *question,
                    {"role": "assistant", "content": f"{a - b} " + _sentence(rng, 2, 5)},
                ],
            }
        )
    path = folder / "pref_tiny.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def make_checkpoint(folder: Path, base: Path, model_key: str = "model", name: str = "ckpt") -> Path:
    """Save a random state dict of ``base``'s ``model_key`` node into ``<name>/model.pt``;
    config and weights cannot drift."""
    import torch
    from omegaconf import OmegaConf
    from torchtune import config as tt_config

    cfg = OmegaConf.load(base)
    torch.manual_seed(0)
    model = tt_config.instantiate(cfg[model_key])  # fp32, on the CPU
    path = folder / name / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
