"""The oracle's corpus: configs that `tune run` trains or refuses, as data.

Each :class:`Case` says which tiny base it starts from (one per recipe: ``assets.RECIPES``), the
sections of its experiment as YAML text, an optional edit of the base itself (for what an
experiment cannot express, such as a list of datasets) and what the real ``tune run`` does with
it: ``trains``, or the dotted key path whose value makes it fail. Every expectation is checked
against torchtune 0.6.1's ``tune run`` on the tiny assets by ``tests/test_oracle.py``; a case's
``note`` is what torchtune says, and its ``cause`` the kind of mistake (the table in
docs/validation.md counts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .assets import (
    DPO,
    FULL,
    GENERATE,
    GENERATE_V2,
    KD,
    LORA,
    QLORA,
    QUANTIZE,
    RECIPES,
    TRAINING,
)

TRAINS = "trains"

# A list of two alpaca datasets (ConcatDataset): the second one mistyped when asked.
_DATASET_LIST = """\
dataset:
  - _component_: torchtune.datasets.alpaca_dataset
    source: json
    data_files: ${{base_dir}}/assets/alpaca_tiny.json
    split: train
  - _component_: torchtune.datasets.alpaca_dataset
    source: json
    data_files: ${{base_dir}}/assets/alpaca_tiny.json
    split: train
    {second}
"""


@dataclass(frozen=True)
class Case:
    """One config of the corpus and what ``tune run`` does with it.

    Attributes:
        name: The case's name, its folder's and its experiment's.
        base: Which tiny base: ``full`` (full_finetune_single_device) or ``lora``
            (lora_finetune_single_device).
        expect: ``trains``, or the dotted key path our tools must point at (validate's error
            finding, or the key named by generate's refusal).
        also: Other key paths that point at the same mistake just as well (the other half of a
            combination that torchtune refuses).
        controls: The experiment's ``controls`` section, YAML text.
        variables: Its ``variables`` section, YAML text.
        launch: Its ``launch`` section, YAML text.
        base_edit: YAML text of top-level keys that replace the base's own.
        raw: ``tune run`` gets the base with the controls put in by OmegaConf, not what
            ``generate`` writes: the mistake is one ``generate`` may refuse or rewrite, and the
            question is then whether the raw config is caught by one of our tools.
        note: What ``tune run`` says (its last exception line), for the reader.
        cause: The kind of mistake (for the table of causes); empty for a config that trains.
        preflight: The mistake is in a file that only ``--preflight`` reads for real (on the
            machine that trains, which the oracle's machine is).
        files: Files written beside the experiment (a module of the user's own).
        warns: For a config that runs but trains nothing (exit 0), the key path validate must
            warn at.
    """

    name: str
    base: str
    expect: str = TRAINS
    also: tuple[str, ...] = ()
    controls: str = ""
    variables: str = ""
    launch: str = ""
    base_edit: str = ""
    raw: bool = False
    note: str = ""
    cause: str = ""
    preflight: bool = False
    files: dict[str, str] = field(default_factory=dict)
    warns: str = ""

    @property
    def trains(self) -> bool:
        """Whether ``tune run`` trains it."""
        return self.expect == TRAINS

    @property
    def recipe(self) -> str:
        """The torchtune recipe that runs it."""
        return RECIPES[self.base]

    @property
    def saves_checkpoint(self) -> bool:
        """Whether a run saves a checkpoint in its output_dir (a training recipe that trains)."""
        return self.trains and self.base in TRAINING and not self.warns

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key path that counts as pointing at its mistake."""
        return () if self.trains else (self.expect, *self.also)


BASIC: tuple[Case, ...] = (
    # --- configs that train: no error may be found in them ------------------------------------
    Case("full_good", FULL),
    Case("lora_good", LORA),
    Case("lora_sweep_good", LORA, variables="lora_rank: [2, 4]"),
    Case(
        "shared_checkpointer_dir_good",
        LORA,
        variables="lora_rank: [2, 4]",
        controls="""
            checkpointer:
              output_dir: ${base_dir}/out/shared_checkpoints
        """,
        note="one literal checkpointer.output_dir for all runs: generate splits it per run",
    ),
    Case(
        "good_passthrough",
        FULL,
        controls="""
            dataset:
              split: "train[:12]"        # alpaca_dataset's own, a slice as load_dataset reads it
              column_map: {instruction: instruction, input: input, output: output}
              encoding: utf-8            # to the json builder, through load_dataset
              keep_in_memory: true       # to load_dataset itself
        """,
        note="alpaca_dataset passes unknown keys to load_dataset on purpose",
    ),
    Case("dataset_list_good", FULL, base_edit=_DATASET_LIST.format(second="packed: false")),
    Case("bf16_on_cpu_good", FULL, controls="dtype: bf16", note="bf16 is checked on CUDA only"),
    Case("optimizer_in_bwd_good", FULL, controls="optimizer_in_bwd: true"),
    Case("gradient_accumulation_good", LORA, controls="gradient_accumulation_steps: 2"),
    Case(
        "checkpointing_without_offloading_good",
        LORA,
        controls="enable_activation_checkpointing: true",
        note="only a hint that offloading would save memory",
    ),
    Case(
        "packed_good",
        FULL,
        controls="dataset: {packed: true}",
        note="packs to tokenizer.max_seq_len (64)",
    ),
    # --- configs that tune run refuses ----------------------------------------------------------
    Case(
        "float_batch_size",
        FULL,
        "batch_size",
        controls="batch_size: 4.0",
        raw=True,
        note="ValueError: batch_size should be a positive integer value, but got batch_size=4.0",
        cause="a value of the wrong type",
    ),
    Case(
        "float_epochs",
        FULL,
        "epochs",
        controls="epochs: 1.5",
        raw=True,
        note="TypeError: 'float' object cannot be interpreted as an integer",
        cause="a value of the wrong type",
    ),
    Case(
        "packed_without_max_seq_len",
        FULL,
        "dataset.packed",
        controls="""
            dataset: {packed: true}
            tokenizer: {max_seq_len: null}
        """,
        note="ValueError: PackedDataset requires a max_seq_len to be set on the tokenizer.",
        cause="what the recipe needs",
    ),
    Case(
        "misspelt_split",
        FULL,
        "dataset.spilt",
        controls="dataset: {spilt: train}",
        note="TypeError: JsonConfig.__init__() got an unexpected keyword argument 'spilt'",
        cause="a misspelt argument",
    ),
    Case(
        "misspelt_packed",
        LORA,
        "dataset.pakced",
        controls="dataset: {pakced: true}",
        cause="a misspelt argument",
    ),
    Case(
        "misspelt_in_list",
        FULL,
        "dataset.1.pakced",
        base_edit=_DATASET_LIST.format(second="pakced: true"),
        cause="a misspelt argument",
    ),
    Case(
        "optimizer_in_bwd_with_accumulation",
        FULL,
        "optimizer_in_bwd",
        also=("gradient_accumulation_steps",),
        controls="""
            optimizer_in_bwd: true
            gradient_accumulation_steps: 2
        """,
        note="RuntimeError: Gradient accumulation is not supported with optimizer in bwd.",
        cause="settings the recipe refuses together",
    ),
    Case(
        "optimizer_in_bwd_with_clipping",
        FULL,
        "optimizer_in_bwd",
        also=("clip_grad_norm",),
        controls="""
            optimizer_in_bwd: true
            clip_grad_norm: 1.0
        """,
        note="RuntimeError: Gradient clipping is not supported with optimizer in bwd.",
        cause="settings the recipe refuses together",
    ),
    Case(
        "offloading_on_cpu",
        FULL,
        "enable_activation_offloading",
        also=("device",),
        controls="""
            enable_activation_offloading: true
            enable_activation_checkpointing: true
        """,
        note="RuntimeError: enable_activation_offloading should only be True when training on CUDA",
        cause="settings the recipe refuses together",
    ),
    Case(
        "offloading_on_cpu_lora",
        LORA,
        "enable_activation_offloading",
        also=("enable_activation_checkpointing", "device"),
        controls="enable_activation_offloading: true",
        note="the same RuntimeError: on CPU the CUDA check comes before the one for checkpointing",
        cause="settings the recipe refuses together",
    ),
    Case(
        "nproc_on_single_device",
        FULL,
        "launch.nproc_per_node",
        launch="nproc_per_node: 2",
        note="tune run: error: Recipe full_finetune_single_device does not support distributed",
        cause="a launch the recipe refuses",
    ),
    Case(
        "fp16_full",
        FULL,
        "dtype",
        controls="dtype: fp16",
        note="ValueError: full fp16 training is not supported with this recipe.",
        cause="a dtype spelling",
    ),
    Case(
        "fp16_lora",
        LORA,
        "dtype",
        controls="dtype: fp16",
        note="ValueError: fp16 precision is not supported in this recipe.",
        cause="a dtype spelling",
    ),
    Case(
        "left_pad_collate",
        FULL,
        "collate_fn",
        controls="+collate_fn: torchtune.data.left_pad_sequence",
        note="RuntimeError: left_pad_sequence collator is only for inference.",
        cause="a component of another recipe family",
    ),
    Case(
        "scheduler_swap_good",
        LORA,
        controls="""
            lr_scheduler: !replace
              _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
              num_warmup_steps: 1
        """,
        note="a scheduler replaced whole (!replace) by one that takes what the recipe passes",
    ),
    Case(
        "scheduler_key_deleted_good",
        LORA,
        controls="lr_scheduler: {~num_cycles: }",
        note="~key: deletes a key of the base; the scheduler's default takes its place",
    ),
    Case(
        "constant_lr_swap",
        LORA,
        "lr_scheduler",
        controls="""
            lr_scheduler: !replace {_component_: torch.optim.lr_scheduler.ConstantLR, factor: 1.0}
        """,
        note="TypeError: ConstantLR.__init__() got an unexpected keyword argument "
        "'num_training_steps' (the recipe passes it)",
        cause="a component of another recipe family",
    ),
    Case(
        "scheduler_required_key_deleted",
        LORA,
        "lr_scheduler",
        controls="lr_scheduler: {~num_warmup_steps: }",
        note="TypeError: get_cosine_schedule_with_warmup() missing 1 required positional "
        "argument: 'num_warmup_steps'",
        cause="what the recipe needs",
    ),
    Case(
        "lora_without_lr_scheduler",
        LORA,
        "lr_scheduler",
        controls="lr_scheduler: null",
        note="AttributeError: 'NoneType' object has no attribute 'step' (at the first step)",
        cause="what the recipe needs",
    ),
)


# --- other recipes, other causes (issue 28): full, LoRA, QLoRA, DPO, KD, generate, quantize --

_TIED = """
    model: !replace
      _component_: torchtune.models.llama3_2.lora_llama3_2
      lora_attn_modules: [q_proj, v_proj]
      apply_lora_to_mlp: false
      apply_lora_to_output: {output}
      lora_rank: 4
      lora_alpha: 8
      vocab_size: 256
      num_layers: 2
      num_heads: 4
      num_kv_heads: 2
      embed_dim: 64
      intermediate_dim: 128
      max_seq_len: 128
      tie_word_embeddings: true
"""
_PROFILER = """
    +profiler:
      _component_: torchtune.training.setup_torch_profiler
      enabled: true
      output_dir: ${{output_dir}}/profiling
      cpu: true
      cuda: false
      wait_steps: 0
      warmup_steps: {warmup}
      active_steps: {active}
      num_cycles: 1
"""
_LOCAL_SCHEDULE = "schedules.constant"

MORE: tuple[Case, ...] = (
    # configs that train, on every recipe
    Case("qlora_good", QLORA, note="NF4 base weights, LoRA adapters"),
    Case("dpo_good", DPO),
    Case("kd_good", KD),
    Case("generate_good", GENERATE),
    Case("quantize_good", QUANTIZE),
    Case("qlora_rank_sweep_good", QLORA, variables="lora_rank: [2, 8]"),
    Case("dpo_accumulation_good", DPO, controls="gradient_accumulation_steps: 2"),
    Case(
        "dpo_rso_loss_good",
        DPO,
        controls="loss: !replace {_component_: torchtune.rlhf.loss.RSOLoss, gamma: 0.1}",
        note="another preference loss, replaced whole",
    ),
    Case("kd_ratio_sweep_good", KD, variables="kd_ratio: [0.25, 0.75]"),
    Case(
        "kd_reverse_kl_good",
        KD,
        controls="""
            kd_loss: !replace
              _component_: torchtune.modules.loss.ReverseKLWithChunkedOutputLoss
        """,
    ),
    Case("generate_without_cache_good", GENERATE, controls="enable_kv_cache: false"),
    Case("generate_top_k_sweep_good", GENERATE, variables="top_k: [1, 10]"),
    Case("quantize_groupsize_good", QUANTIZE, controls="quantizer: {groupsize: 64}"),
    Case("lora_dropout_sweep_good", LORA, variables="lora_dropout: [0.0, 0.1]"),
    Case("lora_on_output_untied_good", LORA, controls="apply_lora_to_output: true"),
    Case("full_clipping_good", FULL, controls="clip_grad_norm: 1.0"),
    Case(
        "full_sgd_good",
        FULL,
        controls="optimizer: !replace {_component_: torch.optim.SGD, lr: 0.01, momentum: 0.9}",
    ),
    Case("profiler_good", LORA, controls=_PROFILER.format(warmup=0, active=1)),
    Case(
        "epochs_zero_trains_nothing",
        LORA,
        controls="epochs: 0",
        warns="epochs",
        note="no step, no checkpoint, exit 0: validate warns, it is no error",
    ),
    Case(
        "local_schedule_module_good",
        LORA,
        controls=f"""
            lr_scheduler: !replace
              _component_: {_LOCAL_SCHEDULE}
        """,
        files={
            "schedules.py": (
                "import torch\n\n\n"
                "def constant(optimizer, num_training_steps, last_epoch=-1):\n"
                "    return torch.optim.lr_scheduler.LambdaLR(\n"
                "        optimizer, lambda step: 1.0, last_epoch=last_epoch\n"
                "    )\n"
            )
        },
        note="a component from a module beside the experiment, as tune run imports it",
    ),
    Case("seed_sweep_good", FULL, variables="seed: [1, 2, 3]"),
    Case(
        "shuffle_spelt_yes_good",
        LORA,
        controls='shuffle: "yes"',
        note="a quoted yes over a boolean: tune run takes it (truthy); generate warns",
    ),
    Case(
        "generate_v2_good",
        GENERATE_V2,
        note="a recipe tune run knows as dev/generate_v2",
    ),
    Case(
        "unknown_lora_module_trains",
        LORA,
        controls="lora_attn_modules: [q_proj, w_proj]",
        note="torchtune puts LoRA on the modules it knows and ignores the rest",
    ),
    Case("quantize_groupsize_128_good", QUANTIZE, controls="quantizer: {groupsize: 128}"),
    Case("generate_top_k_above_vocabulary_good", GENERATE, controls="top_k: 1000"),
    Case("generate_greedy_good", GENERATE, controls="temperature: 0.0"),
    Case("qlora_dora_good", QLORA, controls="model: {use_dora: true}"),
    Case("kd_ratio_above_one_good", KD, controls="kd_ratio: 2.0"),
    Case(
        "full_activation_checkpointing_good", FULL, controls="enable_activation_checkpointing: true"
    ),
    Case(
        "max_steps_zero_trains_an_epoch",
        FULL,
        controls="max_steps_per_epoch: 0",
        note="the recipe compares after each step, so 0 never stops the epoch: it trains",
    ),
    # a zero a recipe divides or takes a modulo by
    Case(
        "accumulation_zero",
        LORA,
        "gradient_accumulation_steps",
        controls="gradient_accumulation_steps: 0",
        cause="a zero the recipe divides by",
        note="ZeroDivisionError: integer division or modulo by zero (setup)",
    ),
    Case(
        "log_every_zero",
        FULL,
        "log_every_n_steps",
        controls="log_every_n_steps: 0",
        cause="a zero the recipe divides by",
        note="ZeroDivisionError: integer modulo by zero (the first step)",
    ),
    Case(
        "dpo_log_every_zero",
        DPO,
        "log_every_n_steps",
        controls="log_every_n_steps: 0",
        cause="a zero the recipe divides by",
    ),
    Case(
        "lora_rank_zero",
        LORA,
        "model.lora_rank",
        controls="lora_rank: 0",
        cause="a zero the recipe divides by",
        note="ZeroDivisionError: alpha / rank in LoRALinear",
    ),
    # a loss or dataset of another recipe family
    Case(
        "dpo_loss_in_sft",
        LORA,
        "loss",
        controls="loss: !replace {_component_: torchtune.rlhf.loss.DPOLoss}",
        cause="a component of another recipe family",
        note="AttributeError: 'DPOLoss' object has no attribute 'ignore_index'",
    ),
    Case(
        "sft_data_in_dpo",
        DPO,
        "dataset",
        controls="""
            dataset: !replace
              _component_: torchtune.datasets.alpaca_dataset
              source: json
              data_files: ${base_dir}/assets/alpaca_tiny.json
              split: train
        """,
        cause="a component of another recipe family",
        note="KeyError: 'chosen_input_ids'",
    ),
    Case(
        "sft_loss_in_dpo",
        DPO,
        "loss",
        controls="loss: !replace {_component_: torchtune.modules.loss.CEWithChunkedOutputLoss}",
        cause="a component of another recipe family",
    ),
    Case(
        "kd_loss_not_chunked",
        KD,
        "kd_loss",
        controls="kd_loss: !replace {_component_: torchtune.modules.loss.ForwardKLLoss}",
        cause="a component of another recipe family",
        note="the KD recipe hands the loss chunked logits",
    ),
    Case(
        "sft_loss_as_kd_loss",
        KD,
        "kd_loss",
        controls="kd_loss: !replace {_component_: torchtune.modules.loss.CEWithChunkedOutputLoss}",
        cause="a component of another recipe family",
    ),
    # a builder that refuses a value range or a tied embedding
    Case(
        "lora_dropout_above_one",
        LORA,
        "model.lora_dropout",
        controls="lora_dropout: 1.5",
        cause="a value a builder refuses",
        note="ValueError: dropout probability has to be between 0 and 1",
    ),
    Case(
        "kd_student_dropout_above_one",
        KD,
        "model.lora_dropout",
        variables="lora_dropout: [1.5]",
        cause="a value a builder refuses",
    ),
    Case(
        "heads_do_not_divide",
        FULL,
        "model.num_heads",
        also=("model.num_kv_heads",),
        controls="model: {num_heads: 3, num_kv_heads: 3}",
        cause="a value a builder refuses",
    ),
    Case(
        "lora_on_tied_output",
        LORA,
        "model",
        also=("model.apply_lora_to_output",),
        controls=_TIED.format(output="true"),
        cause="a tied embedding",
        note="ValueError: apply_lora_to_output is currently not supporting in llama3.2 1b and 3b",
    ),
    Case(
        "batch_size_zero",
        FULL,
        "batch_size",
        controls="batch_size: 0",
        cause="a value a component refuses",
        note="ValueError: batch_size should be a positive integer value, but got batch_size=0",
    ),
    Case(
        "generate_top_k_zero",
        GENERATE,
        "top_k",
        controls="top_k: 0",
        cause="a value a component refuses",
        note="IndexError: select(): index -1 out of range for tensor of size [1, 0]",
    ),
    Case(
        "negative_learning_rate",
        FULL,
        "optimizer.lr",
        controls="learning_rate: -1e-3",
        cause="a value a component refuses",
        note="ValueError: Invalid learning rate: -0.001",
    ),
    Case(
        "dpo_negative_weight_decay",
        DPO,
        "optimizer.weight_decay",
        controls="optimizer: {weight_decay: -0.5}",
        cause="a value a component refuses",
    ),
    Case(
        "qlora_betas_out_of_range",
        QLORA,
        "optimizer.betas",
        controls="optimizer: {betas: [0.9, 1.5]}",
        cause="a value a component refuses",
    ),
    Case(
        "quantize_groupsize_zero",
        QUANTIZE,
        "quantizer.groupsize",
        controls="quantizer: {groupsize: 0}",
        cause="a zero the recipe divides by",
        note="ZeroDivisionError: integer modulo by zero",
    ),
    Case(
        "generate_v2_top_k_zero",
        GENERATE_V2,
        "top_k",
        controls="top_k: 0",
        cause="a value a component refuses",
    ),
    Case(
        "clip_norm_not_a_number",
        FULL,
        "clip_grad_norm",
        controls="clip_grad_norm: abc",
        cause="a value a component refuses",
        note="ValueError: could not convert string to float: 'abc' (the first step)",
    ),
    # a model config that does not match the checkpoint
    Case(
        "more_layers_than_checkpoint",
        FULL,
        "model.num_layers",
        controls="model: {num_layers: 3}",
        cause="a model that does not match its checkpoint",
        note="RuntimeError: Missing key(s) in state_dict: layers.2...",
    ),
    Case(
        "lora_vocabulary_not_the_checkpoints",
        LORA,
        "model.vocab_size",
        controls="model: {vocab_size: 512}",
        cause="a model that does not match its checkpoint",
    ),
    Case(
        "kd_teacher_vocabulary_not_its_checkpoints",
        KD,
        "teacher_model.vocab_size",
        controls="teacher_model: {vocab_size: 512}",
        cause="a model that does not match its checkpoint",
        note="size mismatch for tok_embeddings.weight",
    ),
    Case(
        "sequences_longer_than_the_model",
        FULL,
        "tokenizer.max_seq_len",
        controls="tokenizer: {max_seq_len: 512}",
        cause="a model that does not match its data",
        note="ValueError: seq_len (162) of input tensor should be smaller than max_seq_len (128)",
    ),
    Case(
        "kd_teacher_not_its_checkpoint",
        KD,
        "teacher_model.embed_dim",
        controls="teacher_model: {embed_dim: 64}",
        cause="a model that does not match its checkpoint",
    ),
    Case(
        "lora_model_in_full_recipe",
        FULL,
        "model",
        controls="""
            model: !replace
              _component_: torchtune.models.llama2.lora_llama2
              lora_attn_modules: [q_proj, v_proj]
              lora_rank: 4
              lora_alpha: 8
              vocab_size: 256
              num_layers: 2
              num_heads: 4
              num_kv_heads: 2
              embed_dim: 64
              max_seq_len: 128
        """,
        cause="a model that does not match its checkpoint",
        note="the full recipe loads its checkpoint strictly: the LoRA keys are missing",
    ),
    Case(
        "qlora_more_layers_than_checkpoint",
        QLORA,
        "model.num_layers",
        controls="model: {num_layers: 3}",
        cause="a model that does not match its checkpoint",
    ),
    Case(
        "qlora_dropout_above_one",
        QLORA,
        "model.lora_dropout",
        controls="lora_dropout: 1.2",
        cause="a value a builder refuses",
    ),
    Case(
        "unknown_model_type",
        LORA,
        "checkpointer.model_type",
        controls="checkpointer: {model_type: LLAMA9}",
        cause="a model that does not match its checkpoint",
        note="KeyError: 'LLAMA9'",
    ),
    Case(
        "checkpoint_file_not_in_folder",
        GENERATE,
        "checkpointer.checkpoint_files",
        controls="checkpointer: {checkpoint_files: [nope.pt]}",
        cause="a model that does not match its checkpoint",
    ),
    # a tokenizer file of the wrong kind
    Case(
        "tiktoken_tokenizer_on_sentencepiece_file",
        FULL,
        "tokenizer",
        also=("tokenizer._component_", "tokenizer.path"),
        controls="tokenizer: {_component_: torchtune.models.llama3.llama3_tokenizer}",
        cause="a tokenizer file of the wrong kind",
    ),
    Case(
        "generate_tokenizer_of_another_family",
        GENERATE,
        "tokenizer",
        also=("tokenizer._component_", "tokenizer.path"),
        controls="tokenizer: {_component_: torchtune.models.qwen2.qwen2_tokenizer}",
        cause="a tokenizer file of the wrong kind",
    ),
    # a split or column the data does not have
    Case(
        "split_the_data_lacks",
        LORA,
        "dataset.split",
        controls="dataset: {split: validation}",
        cause="a split or column the data does not have",
        note='ValueError: Unknown split "validation"',
    ),
    Case(
        "column_the_data_lacks",
        FULL,
        "dataset.column_map",
        controls="dataset: {column_map: {output: answer}}",
        cause="a split or column the data does not have",
        note="KeyError: 'answer'",
    ),
    Case(
        "dpo_column_the_data_lacks",
        DPO,
        "dataset.column_map",
        controls="dataset: {column_map: {chosen: preferred}}",
        cause="a split or column the data does not have",
    ),
    Case(
        "data_file_missing",
        KD,
        "dataset.data_files",
        controls='dataset: {data_files: "${base_dir}/assets/missing.json"}',
        cause="a split or column the data does not have",
        preflight=True,
        note="FileNotFoundError: only the machine with the data can tell (--preflight)",
    ),
    # a profiler schedule, a dtype spelling
    Case(
        "profiler_without_active_steps",
        LORA,
        "profiler",
        also=("profiler.active_steps",),
        controls=_PROFILER.format(warmup=0, active=0),
        cause="a profiler schedule",
    ),
    Case(
        "dtype_spelt_float32",
        LORA,
        "dtype",
        controls="dtype: float32",
        cause="a dtype spelling",
        note="ValueError: Dtype float32 must be one of fp16, bf16, fp32, fp64 for finetuning.",
    ),
    Case(
        "generate_dtype_spelt_half",
        GENERATE,
        "dtype",
        controls="dtype: half",
        cause="a dtype spelling",
    ),
    Case(
        "quantize_dtype_spelt_float",
        QUANTIZE,
        "dtype",
        controls="dtype: float",
        cause="a dtype spelling",
    ),
    # what the recipe itself needs
    Case(
        "quantizer_missing",
        QUANTIZE,
        "quantizer",
        controls="quantizer: null",
        cause="what the recipe needs",
        note="the quantize recipe quantizes with the quantizer it is given",
    ),
    Case(
        "prompt_as_text",
        GENERATE,
        "prompt",
        controls="prompt: add the two numbers",
        raw=True,
        cause="what the recipe needs",
        note="the generate recipe reads prompt.system and prompt.user",
    ),
    Case(
        "kd_without_teacher_checkpointer",
        KD,
        "teacher_checkpointer",
        controls="~teacher_checkpointer:",
        cause="what the recipe needs",
    ),
    Case(
        "dpo_packed_dataset",
        DPO,
        "dataset.packed",
        controls="dataset: {packed: true}",
        cause="what the recipe needs",
    ),
)

CORPUS = (*BASIC, *MORE)


def case_named(name: str) -> Case:
    """The corpus case of that name."""
    return next(case for case in CORPUS if case.name == name)
