"""Launching: the `tune run` command of each run, and the SLURM job array that runs them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from torchtune_config_writer import ConfigWriterError, generate
from torchtune_config_writer.generation import builtin_configs

from .conftest import EXAMPLES, RECIPE, CliResult, experiment_text, snapshot

LAUNCH = """\
launch:
  slurm:
    sbatch:
      partition: gpu
      time: "04:00:00"
      gres: gpu:1
      comment: rank study
      exclusive: true
    max_parallel: 2
    setup:
      - export STUDY_SETUP=done
"""


def commands_of(experiment: Path) -> list[str]:
    mapping = yaml.safe_load((experiment.parent / "configs" / "run_mapping.yaml").read_text())
    return [run["command"] for run in mapping["runs"]]


def stand_in_tune(tmp_path: Path) -> Path:
    """A folder with a `tune` that records its arguments and where it ran, one line per call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tune = bin_dir / "tune"
    tune.write_text(
        '#!/bin/bash\nprintf "%s|%s|%s\\n" "$PWD" "${STUDY_SETUP:-}" "$*" >> "$TUNE_CALLS"\n'
    )
    tune.chmod(0o755)
    return bin_dir


def run_array_task(
    script: Path,
    cwd: Path,
    task: int | None,
    bin_dir: Path,
    calls: Path,
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TUNE_CALLS": str(calls)}
    env.update(extra or {})
    env.pop("SLURM_ARRAY_TASK_ID", None)
    if task is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task)
    return subprocess.run(
        ["bash", str(script)], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_each_run_carries_the_command_that_trains_it(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    generate(path)
    assert commands_of(path) == [
        "tune run lora_finetune_single_device --config configs/run_000.yaml",
        "tune run lora_finetune_single_device --config configs/run_001.yaml",
    ]
    # The recipe is torchtune's own for the config, as `tune ls` lists it.
    torchtune = builtin_configs.installed_torchtune()
    assert torchtune is not None
    builtin = torchtune.find(RECIPE)
    assert builtin is not None and builtin.recipe == "lora_finetune_single_device"
    # Each command's config is a file that exists, from the experiment's folder.
    for command in commands_of(path):
        assert (path.parent / shlex.split(command)[-1]).is_file()


def test_the_recipe_of_a_custom_base_is_named_in_framework_config(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "exp").mkdir()
    shutil.copy(EXAMPLES / "lr_batch_sweep" / "my_gpu_optimized.yaml", tmp_path / "exp")
    base = "base_config_file: my_gpu_optimized.yaml\n  recipe: full_finetune_distributed"
    path = write_experiment(
        experiment_text(variables="seed: [1, 2]", base=base) + "launch:\n  nproc_per_node: 4\n"
    )
    generate(path)
    assert commands_of(path)[1] == (
        "tune run --nproc_per_node 4 full_finetune_distributed --config configs/run_001.yaml"
    )


def test_a_custom_base_without_a_recipe_has_no_commands(
    write_experiment: Callable[..., Path],
) -> None:
    path = EXAMPLES / "lr_batch_sweep" / "configs" / "run_mapping.yaml"
    runs = yaml.safe_load(path.read_text())["runs"]
    assert runs and all("command" not in run for run in runs)


def test_a_recipe_file_is_run_from_the_experiments_folder(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "exp" / "recipes").mkdir(parents=True)
    (tmp_path / "exp" / "recipes" / "my_recipe.py").write_text("# a recipe\n")
    path = write_experiment(
        experiment_text(base=f"base_config: {RECIPE}\n  recipe: recipes/my_recipe.py")
    )
    generate(path)
    assert commands_of(path) == ["tune run recipes/my_recipe.py --config configs/run_000.yaml"]


def test_a_missing_recipe_file_is_refused(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(experiment_text(base=f"base_config: {RECIPE}\n  recipe: nope.py"))
    with pytest.raises(ConfigWriterError, match=r"framework_config.recipe nope.py is not a file"):
        generate(path)


def test_the_slurm_array_runs_run_n_in_task_n_exactly_as_its_command(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(
        experiment_text(
            variables="lora_rank: [8, 16, 32]", controls=f"seed: 7\noutput_dir: {tmp_path}/out"
        )
        + LAUNCH
    )
    generate(path)
    script = path.parent / "configs" / "slurm_array.sh"
    directives = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=study",
        "#SBATCH --array=0-2%2",
        "#SBATCH --output=/dev/null",  # each task logs in its run's output_dir
        "#SBATCH --signal=B:USR1@120",  # to requeue itself before its time limit
        "#SBATCH --partition=gpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --comment='rank study'",
        "#SBATCH --exclusive",
    ]
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    for task in range(3):
        done = run_array_task(script, path.parent, task, bin_dir, calls)
        assert done.returncode == 0, done.stderr
    expected = [
        f"{path.parent}|done|{command.removeprefix('tune ')}" for command in commands_of(path)
    ]
    assert calls.read_text().splitlines() == expected


def test_the_slurm_array_refuses_to_run_outside_its_experiment_folder_or_sbatch(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(
        experiment_text(variables="lora_rank: [8, 16]", controls=f"output_dir: {tmp_path}/out")
        + LAUNCH
    )
    other = write_experiment(experiment_text(variables="seed: [1, 2]"), folder="other")
    other.write_text(other.read_text().replace("name: study", "name: other_study"))
    generate(path)
    generate(other)
    script = path.parent / "configs" / "slurm_array.sh"
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    for cwd in (tmp_path, other.parent):  # no configs here; another experiment's configs here
        elsewhere = run_array_task(script, cwd, 0, bin_dir, calls)
        assert (elsewhere.returncode, elsewhere.stderr) == (
            2,
            f"error: {cwd} is not the folder of the experiment study: cd to the folder of the "
            "experiment file and run sbatch configs/slurm_array.sh\n",
        )
    unset = run_array_task(script, path.parent, None, bin_dir, calls)
    assert unset.returncode == 2
    assert unset.stderr.startswith("error: this is a job array and SLURM_ARRAY_TASK_ID is not set")
    past_the_end = run_array_task(script, path.parent, 2, bin_dir, calls)
    assert (past_the_end.returncode, past_the_end.stderr) == (
        2,
        "error: array task 2 has no run: study has runs 0 to 1\n",
    )
    assert not calls.exists()


@pytest.mark.slow
def test_a_sweep_of_1000_runs_gets_four_digit_task_configs(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(
        experiment_text(variables="seed: [" + ", ".join(map(str, range(1000))) + "]")
        + "launch:\n  slurm: {}\n"
    )
    generate(path)
    script = path.parent / "configs" / "slurm_array.sh"
    assert "#SBATCH --array=0-999\n" in script.read_text()
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    assert run_array_task(script, path.parent, 999, bin_dir, calls).returncode == 0
    assert calls.read_text().endswith("--config configs/run_0999.yaml\n")


def test_removing_launch_slurm_removes_the_script(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]") + LAUNCH)
    generate(path)
    assert (path.parent / "configs" / "slurm_array.sh").is_file()
    path.write_text(experiment_text(variables="lora_rank: [8, 16]"))
    drift = cli("check", path)
    assert drift.code == 1 and "stale: " in drift.out and "slurm_array.sh" in drift.out
    generate(path)
    assert not (path.parent / "configs" / "slurm_array.sh").exists()


def test_a_hand_edited_script_is_drift(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]") + LAUNCH)
    generate(path)
    script = path.parent / "configs" / "slurm_array.sh"
    script.write_text(script.read_text().replace("--partition=gpu", "--partition=debug"))
    result = cli("check", path)
    assert result.code == 1
    assert "-#SBATCH --partition=debug" in result.out and "+#SBATCH --partition=gpu" in result.out


def test_a_lock_of_version_0_1_gets_its_recipe_from_torchtune(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    generate(path)
    lock = path.parent / "configs" / "base.lock.yaml"
    old = lock.read_bytes().replace(b"# tune run: lora_finetune_single_device\n", b"")
    lock.write_bytes(old)
    with monkeypatch.context() as without_torchtune:
        without_torchtune.setattr(builtin_configs, "installed_torchtune", lambda: None)
        before = snapshot(path.parent / "configs")
        with pytest.raises(ConfigWriterError, match="does not record the recipe that runs"):
            generate(path)
        assert snapshot(path.parent / "configs") == before
    generate(path)  # with torchtune: the registry knows, and the lock is written again
    assert b"# tune run: lora_finetune_single_device\n" in lock.read_bytes()
    assert lock.read_bytes().endswith(old.split(b"follow. Refresh with", 1)[1].split(b"\n", 1)[1])


def test_slurm_needs_a_recipe(write_experiment: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "base.yaml").write_text("seed: 0\n")
    path = write_experiment(experiment_text(base="base_config_file: base.yaml") + LAUNCH)
    with pytest.raises(ConfigWriterError, match="add framework_config.recipe"):
        generate(path)


def test_a_hand_edited_recipe_in_the_lock_cannot_reach_a_command(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]") + LAUNCH)
    generate(path)
    lock = path.parent / "configs" / "base.lock.yaml"
    lock.write_text(
        lock.read_text().replace(
            "# tune run: lora_finetune_single_device", "# tune run: x; touch pwned #"
        )
    )
    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: None)
    with pytest.raises(ConfigWriterError, match="does not record the recipe that runs"):
        generate(path)


def test_a_script_of_that_name_that_the_tool_did_not_write_is_never_touched(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    mine = path.parent / "configs" / "slurm_array.sh"
    mine.parent.mkdir()
    mine.write_text("#!/bin/bash\n# my own launcher\n")
    generate(path)
    assert mine.read_text() == "#!/bin/bash\n# my own launcher\n"  # kept, not stale
    path.write_text(path.read_text() + LAUNCH)
    before = snapshot(path.parent)
    refused = cli("generate", path)
    assert refused.code == 2
    assert "slurm_array.sh was not written by torchtune-config-writer" in refused.err
    assert snapshot(path.parent) == before


def test_a_recipe_file_is_copied_into_a_timestamped_folder(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "exp" / "recipes").mkdir(parents=True)
    (tmp_path / "exp" / "recipes" / "my_recipe.py").write_text("# a recipe\n")
    path = write_experiment(
        experiment_text(base=f"base_config: {RECIPE}\n  recipe: recipes/my_recipe.py") + LAUNCH
    )
    generated = generate(path, output_base_dir=tmp_path / "outs")
    folder = generated.folder.parent
    assert (folder / "recipes" / "my_recipe.py").read_text() == "# a recipe\n"
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    done = run_array_task(folder / "configs" / "slurm_array.sh", folder, 0, bin_dir, calls)
    assert done.returncode == 0, done.stderr
    assert calls.read_text().endswith("|run recipes/my_recipe.py --config configs/run_000.yaml\n")


def test_a_recipe_file_outside_the_experiment_folder_is_refused(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(base=f"base_config: {RECIPE}\n  recipe: ../r.py"))
    with pytest.raises(ConfigWriterError, match="leads out of the experiment's folder"):
        generate(path)


def slurm_study(
    write_experiment: Callable[..., Path], tmp_path: Path, runs: int, extra: str = ""
) -> Path:
    """A generated study of ``runs`` runs (a seed each) with a SLURM array, writing under
    ``tmp_path/out``."""
    seeds = ", ".join(map(str, range(runs)))
    text = experiment_text(variables=f"seed: [{seeds}]", controls=f"output_dir: {tmp_path}/out")
    path = write_experiment(text + "launch:\n  slurm:" + (f"\n{extra}" if extra else " {}\n"))
    generate(path)
    return path


def test_a_study_larger_than_an_array_may_be_is_split_into_parts_covering_each_run_once(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = slurm_study(write_experiment, tmp_path, 5, "    max_array_size: 2\n")
    script = path.parent / "configs" / "slurm_array.sh"
    text = script.read_text()
    parts = re.findall(
        r"^#   sbatch --array=0-(\d+)(?: --export=ALL,TCW_RUN_OFFSET=(\d+))? ", text, re.M
    )
    assert parts == [("1", ""), ("1", "2"), ("0", "4")]
    assert "#SBATCH --array=0-1\n" in text  # a plain sbatch submits the first part
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    for last, offset in parts:
        for task in range(int(last) + 1):
            extra = {"TCW_RUN_OFFSET": offset} if offset else {}
            assert run_array_task(script, path.parent, task, bin_dir, calls, extra).returncode == 0
    trained = [line.rsplit(" ", 1)[-1] for line in calls.read_text().splitlines()]
    assert trained == [f"configs/run_{n:03d}.yaml" for n in range(5)]
    # Past the last run, with an offset as without.
    beyond = run_array_task(script, path.parent, 1, bin_dir, calls, {"TCW_RUN_OFFSET": "4"})
    assert (beyond.returncode, beyond.stderr) == (
        2,
        "error: array task 1 has no run: study has runs 0 to 4\n",
    )


def test_a_run_whose_final_checkpoint_is_saved_is_not_trained_again(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = slurm_study(write_experiment, tmp_path, 3)
    script = path.parent / "configs" / "slurm_array.sh"
    # torchtune saves the last epoch's checkpoint in checkpointer.output_dir/epoch_{epochs - 1}.
    final = tmp_path / "out" / "run_001" / "epoch_0"
    final.mkdir(parents=True)
    (final / "adapter_model.pt").write_bytes(b"weights")
    (tmp_path / "out" / "run_002" / "epoch_0").mkdir(parents=True)  # begun, nothing saved
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    env = {"SLURM_ARRAY_JOB_ID": "77"}
    for task in range(3):
        assert run_array_task(script, path.parent, task, bin_dir, calls, env).returncode == 0
    trained = [line.rsplit(" ", 1)[-1] for line in calls.read_text().splitlines()]
    assert trained == ["configs/run_000.yaml", "configs/run_002.yaml"]
    # Each task's output is in its run's own folder, not in the committed one.
    log = (tmp_path / "out" / "run_001" / "slurm_77_1.log").read_text()
    assert log == (
        f"configs/run_001.yaml: finished already (its final checkpoint is in {final}): "
        "not trained again\n"
    )
    assert sorted(p.name for p in (tmp_path / "out" / "run_000").iterdir()) == ["slurm_77_0.log"]
    assert not list(path.parent.rglob("*.log")) and not list(path.parent.rglob("*.out"))


def submitted_task(
    script: Path, cwd: Path, task: int, tmp_path: Path, extra: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """A task as sbatch starts it from ``cwd``: its exit code, its standard error (which sbatch
    sends to /dev/null, as the script asks), and its ``slurm-<job>_<task>.out`` in ``cwd``,
    where it was submitted ("" if there is none)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    if not bin_dir.exists():
        stand_in_tune(tmp_path)
    env = {"SLURM_ARRAY_JOB_ID": "77", "SLURM_SUBMIT_DIR": str(cwd), **(extra or {})}
    done = run_array_task(script, cwd, task, bin_dir, calls, env)
    assert not calls.exists()  # nothing trained
    early = cwd / f"slurm-77_{task}.out"
    assert done.stdout == ""
    return done.returncode, done.stderr, early.read_text() if early.exists() else ""


def stops(
    script: Path, cwd: Path, task: int, tmp_path: Path, extra: dict[str, str] | None = None
) -> tuple[int, str]:
    """:func:`submitted_task`'s exit code and message, said alike on standard error and in
    ``slurm-<job>_<task>.out``."""
    code, said, early = submitted_task(script, cwd, task, tmp_path, extra)
    assert said == early
    return code, early


def test_a_task_that_stops_before_its_log_says_why_where_it_was_submitted(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = slurm_study(write_experiment, tmp_path, 3)
    script = path.parent / "configs" / "slurm_array.sh"
    folder = path.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert stops(script, elsewhere, 0, tmp_path) == (
        2,
        f"error: {elsewhere} is not the folder of the experiment study: cd to the folder of the "
        "experiment file and run sbatch configs/slurm_array.sh\n",
    )
    assert stops(script, folder, 3, tmp_path) == (
        2,
        "error: array task 3 has no run: study has runs 0 to 2\n",
    )
    assert stops(script, folder, 0, tmp_path, {"TCW_RUN_OFFSET": "1x"}) == (
        2,
        "error: TCW_RUN_OFFSET is '1x', not a run number: submit each part as the comment of "
        "configs/slurm_array.sh says\n",
    )
    (folder / "configs" / "run_001.yaml").unlink()
    assert stops(script, folder, 1, tmp_path) == (
        2,
        "error: configs/run_001.yaml is missing: regenerate study (torchtune-config-writer "
        "generate)\n",
    )
    (tmp_path / "out").write_text("a file where the runs' folders go")
    code, said, early = submitted_task(script, folder, 2, tmp_path)
    assert code == 2 and said == early
    assert early.startswith("mkdir: ") and early.endswith(
        f"error: cannot make the output_dir of configs/run_002.yaml, {tmp_path}/out/run_002: "
        "let this user write there, or change output_dir\n"
    )
    assert not list(folder.rglob("*.log"))


def test_what_the_shell_says_before_the_log_is_kept_too(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    # Not a message of the script's own: bash's, for a variable the output_dir reads, unset.
    text = experiment_text(
        variables="seed: [1, 2]", controls="output_dir: ${oc.env:TCW_TEST_SCRATCH}/out"
    )
    path = write_experiment(text + "launch:\n  slurm: {}\n")
    generate(path)
    script = path.parent / "configs" / "slurm_array.sh"
    code, said, early = submitted_task(script, path.parent, 1, tmp_path)
    assert code == 1 and said == early
    assert early.endswith("TCW_TEST_SCRATCH: is not set, and the config reads it\n")


def test_an_evaluation_task_submitted_from_elsewhere_says_why_too(tmp_path: Path) -> None:
    script = EXAMPLES / "lora_eval_study" / "configs" / "slurm_eval_array.sh"
    code, said, early = submitted_task(script, tmp_path, 0, tmp_path)
    assert code == 2 and said == early == (
        f"error: {tmp_path} is not the folder of the experiment lora_eval_study-eval: cd to the "
        "folder of the experiment file and run sbatch configs/slurm_eval_array.sh\n"
    )


def test_output_options_of_the_users_own_keep_slurms_output_where_they_say(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = slurm_study(write_experiment, tmp_path, 2, "    sbatch:\n      output: logs/%A_%a.out\n")
    text = (path.parent / "configs" / "slurm_array.sh").read_text()
    assert "#SBATCH --output=logs/%A_%a.out\n" in text
    assert "--output=/dev/null" not in text and "exec >>" not in text


def test_a_multinode_run_starts_tune_run_on_every_node_as_torchtunes_slurm_example(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    text = experiment_text(
        base="base_config_file: base.yaml\n  recipe: full_finetune_distributed",
        variables="seed: [1, 2]",
        controls=f"output_dir: {tmp_path}/out",
    )
    path = write_experiment(text + "launch:\n  nproc_per_node: 8\n  nnodes: 2\n  slurm: {}\n")
    (path.parent / "base.yaml").write_text("output_dir: /tmp/x\nseed: 0\n")
    generate(path)
    assert commands_of(path)[0] == (
        "tune run --nnodes 2 --nproc_per_node 8 full_finetune_distributed "
        "--config configs/run_000.yaml"
    )
    script = path.parent / "configs" / "slurm_array.sh"
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n" in script.read_text()
    # Stand-ins for the parts of Slurm one node cannot show: srun runs its command once per
    # node (here, once, recording it), scontrol names two nodes.
    bin_dir, calls = stand_in_tune(tmp_path), tmp_path / "calls.txt"
    (bin_dir / "scontrol").write_text('#!/bin/bash\nprintf "gpu-a\\ngpu-b\\n"\n')
    (bin_dir / "srun").write_text(
        "#!/bin/bash\nif [[ $* == *hostname* ]]; then echo 10.0.0.7; exit; fi\n"
        'echo "srun $*" >> "$TUNE_CALLS"; "$@"\n'
    )
    for name in ("scontrol", "srun"):
        (bin_dir / name).chmod(0o755)
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu-[a-b]"}
    done = run_array_task(script, path.parent, 1, bin_dir, calls, env)
    assert done.returncode == 0, done.stderr
    srun, tune = calls.read_text().splitlines()
    args = (
        "--nnodes 2 --nproc_per_node 8 --rdzv_id 4242 --rdzv_backend c10d --rdzv_endpoint "
        "10.0.0.7:29500 full_finetune_distributed --config configs/run_001.yaml"
    )
    assert srun == f"srun tune run {args}"
    assert tune == f"{path.parent}||run {args}"


@pytest.mark.parametrize(
    ("launch", "message"),
    [
        (
            "nnodes: 2\n  nproc_per_node: 2",
            "launch.nnodes writes `tune run --nnodes 2 … lora_finetune_single_device`, which "
            "fails at once",
        ),
        ("nnodes: 2", "launch.nnodes: 2 runs each run on 2 nodes: give launch.nproc_per_node"),
    ],
)
def test_nnodes_on_a_single_device_recipe_or_without_processes_is_refused_at_its_line(
    write_experiment: Callable[..., Path], launch: str, message: str
) -> None:
    path = write_experiment(experiment_text() + f"launch:\n  {launch}\n")
    with pytest.raises(ConfigWriterError, match=re.escape(message)) as caught:
        generate(path)
    assert caught.value.line is not None
