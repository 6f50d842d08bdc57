"""Benchmarks: build their own workloads in a temporary folder and print a table.

    python benchmarks/bench.py [--repeat N] [--full] [--only drift,large,generate,...,hooks,results]

Every workload is whole commands in fresh processes (what a user or the pre-commit hook waits
for), the median of N runs. `--full` runs `tune validate` 64 times instead of extrapolating
from 8 (about 8 minutes).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lora_rank_study"
RECIPE = "llama3_2/1B_lora_single_device"
COMMAND = [sys.executable, "-m", "torchtune_config_writer"]
# Measured as a user's environment runs it: with bytecode cached (some shells set this off, and
# every command then compiles the package again, some 40 ms).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
TUNE = str(Path(sys.executable).with_name("tune"))
# Runs the command line and reports its own peak memory (ru_maxrss, KiB on Linux) on stderr.
WITH_PEAK = [
    sys.executable,
    "-c",
    "import resource, sys; from torchtune_config_writer.cli import main; code = main(sys.argv[1:]);"
    "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr);"
    "sys.exit(code)",
]


@dataclass
class Row:
    workload: str
    seconds: float
    note: str = ""
    budget: str = ""


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=False, capture_output=True)
    return time.perf_counter() - start


def median_of(
    repeat: int, args: list[str], cwd: Path, before: Callable[[], None] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        times.append(timed(args, cwd))
    return statistics.median(times)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def write_experiment(folder: Path, name: str, variables: str, base: str = RECIPE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment.yaml"
    path.write_text(
        f"experiment:\n  name: {name}\n  framework: torchtune\n"
        f"framework_config:\n  base_config: {base}\nvariables:\n{variables}"
    )
    return path


def make_repository(root: Path, experiments: int, runs: int) -> list[Path]:
    """``experiments`` copies of the lora_rank_study example of ``runs`` runs each, generated
    and committed in a git repository."""
    paths = []
    ranks = ", ".join(str(4 * (i + 1)) for i in range(runs))
    for index in range(experiments):
        folder = root / f"exp_{index:02d}"
        shutil.copytree(EXAMPLE, folder)
        path = folder / "experiment.yaml"
        text = path.read_text().replace("[8, 16, 32, 64]", f"[{ranks}]")
        # Experiments of one repository share neither a name nor an output folder.
        text = text.replace("lora_study", f"study_{index:02d}")
        path.write_text(text.replace("name: lora_rank_study", f"name: study_{index:02d}"))
        paths.append(path)
    subprocess.run(
        [*COMMAND, "generate", *map(str, paths)], cwd=root, check=True, capture_output=True
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(args, cwd=root, check=True, env=env)
    return paths


def drift_workloads(repeat: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        experiments = make_repository(root, 20, 16)
        every_yaml = [str(p.relative_to(root)) for p in sorted(root.rglob("*.yaml"))]
        rows.append(
            Row("python startup (reference)", median_of(repeat, [sys.executable, "-c", ""], root))
        )
        floor = median_of(repeat, [sys.executable, "-c", f"import {', '.join(LIBRARIES)}"], root)
        rows.append(
            Row(
                "python and the libraries check needs (reference)",
                floor,
                f"import {', '.join(LIBRARIES)}: the floor of any check",
            )
        )
        total, ours = import_times(repeat)
        rows.append(
            Row(
                "importing the package for check (-X importtime)",
                total,
                f"every module imported, Python's own start left out; our modules {ours:.3f} s",
                f"<= 0.03 s: {verdict(total <= 0.03)}",
            )
        )
        seconds = median_of(repeat, [*COMMAND, "check"], root)
        rows.append(
            Row(
                "check, 20 experiments x 16 runs, nothing changed",
                seconds,
                "every experiment of the repository",
                f"<= 0.15 s: {verdict(seconds <= 0.15)}",
            )
        )
        seconds = median_of(repeat, [*COMMAND, "check", "--fix", *every_yaml], root)
        rows.append(
            Row(
                "check --fix on every YAML file, nothing changed",
                seconds,
                f"pre-commit run --all-files: {len(every_yaml)} files",
                f"<= 0.15 s: {verdict(seconds <= 0.15)}",
            )
        )
        changed = experiments[7]
        original = changed.read_text()

        def change_one() -> None:  # alternate, so every run has a change to write
            text = changed.read_text()
            changed.write_text(
                original
                if text != original
                else original.replace("learning_rate: 3e-4", "learning_rate: 5e-4")
            )

        seconds = median_of(repeat, [*COMMAND, "check", "--fix", str(changed)], root, change_one)
        rows.append(
            Row(
                "check --fix after changing one experiment of 20",
                seconds,
                "the hook's work on such a commit; writes 17 files",
                f"<= 0.1 s: {verdict(seconds <= 0.1)}",
            )
        )
        # The pull request's table: one experiment of 20 changed against the commit.
        changed.write_text(original.replace("learning_rate: 3e-4", "learning_rate: 5e-4"))
        subprocess.run(
            [*COMMAND, "generate", str(changed)], cwd=root, check=True, capture_output=True
        )
        seconds = median_of(repeat, [*COMMAND, "diff", "--base", "HEAD"], root)
        rows.append(
            Row(
                "diff --base HEAD, one experiment of 20 changed",
                seconds,
                "the Action's change table; reads the commit with gitpython",
                f"< 1 s: {verdict(seconds < 1)}",
            )
        )
    return rows


# What `check` cannot run without: the YAML library, paths, the command line, `git ls-files`.
LIBRARIES = ("yaml", "pathlib", "argparse", "subprocess", "dataclasses", "typing")


COMMAND_LINE = "from torchtune_config_writer.cli import main"


def import_times(repeat: int, prelude: str = "") -> tuple[float, float]:
    """Seconds that importing the command line and `check` takes, by -X importtime (the sum of
    every module's own time, less what `python -c pass` imports): all of it and our modules'."""

    def own_times(code: str) -> dict[str, int]:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
        )
        times = {}
        for line in result.stderr.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) == 3 and fields[0].strip().isdigit():
                times[fields[2].strip()] = int(fields[0])
        return times

    totals, ours = [], []
    for _ in range(repeat):
        start = own_times("pass")
        times = own_times(f"{prelude}{COMMAND_LINE}; import torchtune_config_writer.cli.check")
        added = {name: us for name, us in times.items() if name not in start}
        totals.append(sum(added.values()) / 1e6)
        ours.append(sum(us for n, us in added.items() if n.startswith("torchtune_config")) / 1e6)
    return statistics.median(totals), statistics.median(ours)


def large_drift_workloads(repeat: int) -> list[Row]:
    """One experiment of 2,000 runs: the lora_rank_study example with 2,000 ranks."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "study"
        shutil.copytree(EXAMPLE, folder)
        path = folder / "experiment.yaml"
        ranks = ", ".join(str(rank) for rank in range(1, 2001))
        text = path.read_text().replace("[8, 16, 32, 64]", f"[{ranks}]")
        path.write_text(text.replace("  name: lora_rank_study\n", "  name: s\n  max_runs: 2000\n"))
        subprocess.run([*COMMAND, "generate", str(path)], cwd=root, check=True, capture_output=True)
        seconds = median_of(repeat, [*COMMAND, "check", str(path)], root)
        rows.append(
            Row(
                "check, one experiment of 2,000 runs, nothing changed",
                seconds,
                "",
                f"<= 1.5 s: {verdict(seconds <= 1.5)}",
            )
        )
        # lora_alpha sits beside each run's own lora_rank: every diff's context differs.
        path.write_text(path.read_text().replace("lora_alpha: 16", "lora_alpha: 32"))
        seconds = median_of(repeat, [*COMMAND, "check", str(path)], root)
        out = subprocess.run(
            [*COMMAND, "check", str(path)], cwd=root, capture_output=True, text=True
        ).stdout
        once = out.count("+  lora_alpha: 32") == 1
        rows.append(
            Row(
                "check, 2,000 runs, one control changed",
                seconds,
                f"{len(out.splitlines())} lines of output, the change shown "
                f"{'once' if once else 'more than once'}",
                f"<= 2 s, once: {verdict(seconds <= 2 and once)}",
            )
        )
    return rows


def generate_workloads() -> list[Row]:
    rows = []
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in (25, 50, 100):  # 625, 2,500 and 10,000 runs
            values = ", ".join(str(i) for i in range(side))
            path = write_experiment(
                Path(tmp) / f"sweep_{side}", "big", f"  seed: [{values}]\n  lora_rank: [{values}]\n"
            )
            start = time.perf_counter()
            result = subprocess.run(
                [*WITH_PEAK, "generate", "--max-runs", "10000", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds = time.perf_counter() - start
            peaks[side * side] = int(result.stderr.split("peak")[-1]) / 1024
        runs = side * side
        rows.append(
            Row(
                f"generate {runs:,} runs of one experiment",
                seconds,
                f"peak memory {peaks[runs]:.0f} MB",
                f"< 10 s, < 200 MB: {verdict(seconds < 10 and peaks[runs] < 200)}",
            )
        )
        growth = ", ".join(f"{count:,} runs {peak:.0f} MB" for count, peak in peaks.items())
        flat = peaks[10000] < 1.5 * peaks[2500]
        rows.append(Row("peak memory by run count", 0.0, growth, f"flat: {verdict(flat)}"))
    return rows


def beyond_workloads(repeat: int) -> list[Row]:
    """Linked variables, placeholders filled in every run, a SLURM script, and `show`."""
    values = ", ".join(str(i) for i in range(1, 101))
    text = (
        "experiment:\n  name: big\n  framework: torchtune\n"
        f"framework_config:\n  base_config: {RECIPE}\n"
        f"variables:\n  seed: [{values}]\n"
        f"  lora:\n    lora_rank: [{values}]\n    lora_alpha: [{values}]\n"
        "controls:\n  output_dir: /scratch/{run_id}\n"
        "  metric_logger:\n    log_dir: /scratch/logs/rank{lora_rank}_seed{seed}\n"
        "launch:\n  slurm:\n    sbatch: {partition: gpu}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "linked"
        folder.mkdir()
        (folder / "experiment.yaml").write_text(text)
        subprocess.run(  # record the base first, as a committed experiment has it
            [*COMMAND, "generate", "--max-runs", "10000", str(folder)],
            check=True,
            capture_output=True,
        )
        generate = median_of(
            min(repeat, 3),
            [*COMMAND, "generate", "--max-runs", "10000", str(folder)],
            Path(tmp),
            before=lambda: _drop_runs(folder),
        )
        show = median_of(repeat, [*COMMAND, "show", "--max-runs", "10000", str(folder)], Path(tmp))
        small = median_of(repeat, [*COMMAND, "show", str(EXAMPLE)], REPO)
    return [
        Row(
            "generate 10,000 runs: a linked group, placeholders, SLURM script",
            generate,
            "every run's strings filled in",
            f"< 10 s: {verdict(generate < 10)}",
        ),
        Row("show 10,000 runs", show, "writes nothing", f"< 10 s: {verdict(show < 10)}"),
        Row("show the lora_rank_study example", small, "", f"< 0.3 s: {verdict(small < 0.3)}"),
    ]


def status_workloads(repeat: int) -> list[Row]:
    """`status` and `resubmit --dry-run` of a 2,000-run SLURM study, every output folder
    written (no Slurm job to ask)."""
    values = ", ".join(str(i) for i in range(2000))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_experiment(Path(tmp) / "study", "study", f"  seed: [{values}]\n")
        path.write_text(
            path.read_text()
            + f"controls:\n  output_dir: {tmp}/out/{{run_id}}\n"
            + f"  metric_logger:\n    log_dir: {tmp}/out/{{run_id}}/logs\n"
            + "launch:\n  slurm: {max_array_size: 5000}\n"
        )
        subprocess.run(
            [*COMMAND, "generate", "--max-runs", "2000", str(path)], check=True, capture_output=True
        )
        for run in range(2000):  # a third finished, a third stopped with logs, a third untouched
            output = Path(tmp) / "out" / f"run_{run:03d}"
            if run % 3 == 0:
                (output / "epoch_0").mkdir(parents=True)
                (output / "epoch_0" / "adapter_model.pt").write_bytes(b"weights")
            elif run % 3 == 1:
                (output / "logs").mkdir(parents=True)
                lines = "".join(f"Step {step} | loss:{1 / step:.4f} \n" for step in range(1, 200))
                (output / "logs" / "log_1700000000.txt").write_text(lines)
        seconds = median_of(
            repeat, [*COMMAND, "status", "--max-runs", "2000", str(path)], Path(tmp)
        )
        resubmit = [*COMMAND, "resubmit", "--dry-run", "--max-runs", "2000", str(path)]
        again = median_of(repeat, resubmit, Path(tmp))
    return [
        Row(
            "status of 2,000 runs, no Slurm",
            seconds,
            "each output folder, checkpoint and log read",
            f"< 2 s: {verdict(seconds < 2)}",
        ),
        Row(
            "resubmit --dry-run, 2,000 runs",
            again,
            "the drift check, then status, of 1,334 unfinished runs",
            f"< 3 s: {verdict(again < 3)}",
        ),
    ]


def _drop_runs(folder: Path) -> None:
    # Every run is written again: the run files go, the recorded base stays.
    for path in (folder / "configs").glob("run_*.yaml"):
        path.unlink()


def recipe_workloads(repeat: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ours = median_of(
            repeat,
            [
                sys.executable,
                "-c",
                "from torchtune_config_writer.generation.builtin_configs import "
                "installed_torchtune;"
                f"installed_torchtune().find({RECIPE!r}).path.read_bytes()",
            ],
            root,
        )
        theirs = median_of(max(3, repeat // 2), [TUNE, "cp", RECIPE, str(root / "copy.yaml")], root)
    return [
        Row("resolve a recipe base (what tune cp copies)", ours, "no torch import"),
        Row("tune cp of the same recipe", theirs, f"{theirs / ours:.0f}x slower than ours"),
    ]


# Each speed mechanism against the plain library call it stands for, in the same command: a
# prelude swaps the plain call in before the command line loads (the mechanism's module first,
# so every module that imports the name gets the plain one). Runs alternate, A B A B.
PLAIN = {
    "the line-by-line YAML writer": (
        "one PyYAML dump per document",
        "import torchtune_config_writer.yaml_write as w\n"
        "w.dump_yaml = w._pyyaml_dump\n"
        "w.dump_inline = w._dump_inline\n",
    ),
    "ReusedConfig": (
        "OmegaConf.create per config",
        "from omegaconf import OmegaConf\n"
        "from torchtune_config_writer.validation import torchtune_runtime as r\n"
        "r.ReusedConfig.config = lambda self, data: OmegaConf.create(data)\n",
    ),
    "renameat2 via ctypes": (
        "two os.rename",
        "from torchtune_config_writer.output import swap\nswap._exchange = lambda a, b: False\n",
    ),
    "lazy imports": (
        "every import at the top",
        "import ctypes, decimal, difflib, hashlib, tempfile\n"
        "import omegaconf.grammar_parser\n"
        "from torchtune_config_writer.cli import check, diff, generate, recipes, schema, show\n"
        "from torchtune_config_writer.cli import validate\n"
        "from torchtune_config_writer.output import check_report, checking, generating\n"
        "from torchtune_config_writer.validation import validating\n",
    ),
    "the dist-info scan": (
        "importlib.metadata.version",
        "import importlib.metadata\n"
        "from torchtune_config_writer.generation import base\n"
        "def version():\n"
        "    try:\n"
        "        return importlib.metadata.version('torchtune')\n"
        "    except importlib.metadata.PackageNotFoundError:\n"
        "        return None\n"
        "base.installed_torchtune_version = version\n",
    ),
}
MAIN = "import sys\nfrom torchtune_config_writer.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def with_and_without(
    repeat: int,
    mechanism: str,
    workload: str,
    args: list[str],
    cwd: Path,
    budget: float | None,
    before: Callable[[], None] | None = None,
) -> Row:
    """The command ``args`` as it is and with ``mechanism`` replaced by its plain call."""
    plain, prelude = PLAIN[mechanism]
    variants = ([sys.executable, "-c", MAIN, *args], [sys.executable, "-c", prelude + MAIN, *args])
    walls: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for index, variant in enumerate(variants):
            if before is not None:
                before()
            wall, cpu = wall_and_cpu(variant, cwd)
            walls[index].append(wall)
            cpus[index].append(cpu)
    ours, theirs = (statistics.median(measured) for measured in walls)
    cpu_ours, cpu_theirs = (statistics.median(measured) for measured in cpus)
    return Row(
        f"{mechanism}: {workload}",
        ours,
        f"without ({plain}): {theirs:.3f} s, {1000 * (theirs - ours):+.0f} ms; CPU time "
        f"{cpu_ours:.3f} s against {cpu_theirs:.3f} s, {1000 * (cpu_theirs - cpu_ours):+.0f} ms",
        ""
        if budget is None
        else f"<= {budget:g} s: {verdict(ours <= budget)}, without {verdict(theirs <= budget)}",
    )


def wall_and_cpu(args: list[str], cwd: Path) -> tuple[float, float]:
    """Seconds the command took, and the CPU seconds it used (user and system): the second
    varies less on a machine that other work shares."""
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


FIRST_CALLS = {
    "the dist-info scan": (
        "from torchtune_config_writer.generation.base import installed_torchtune_version\n"
        "start = time.perf_counter(); installed_torchtune_version()",
        "start = time.perf_counter(); import importlib.metadata\n"
        "importlib.metadata.version('torchtune')",
    ),
    "renameat2 via ctypes": (
        "from torchtune_config_writer.output.swap import _exchange\n"
        "start = time.perf_counter(); _exchange(a, b)",
        "start = time.perf_counter(); os.rename(b, c); os.rename(a, b)",
    ),
}


def first_call(code: str) -> float:
    """Seconds of the code after ``start = ...`` in a fresh process (what a command pays once)."""
    setup = "import os, tempfile, time; d = tempfile.mkdtemp()\n"
    setup += "a, b, c = (os.path.join(d, n) for n in 'abc'); os.mkdir(a); os.mkdir(b)\n"
    done = subprocess.run(
        [sys.executable, "-c", f"{setup}{code}\nprint(time.perf_counter() - start)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def mechanism_workloads(repeat: int) -> list[Row]:
    """What each speed mechanism buys, against the plain library call, on the workloads of the
    budgets it serves."""
    writer, lazy, scan = "the line-by-line YAML writer", "lazy imports", "the dist-info scan"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repository"
        root.mkdir()
        experiments = make_repository(root, 20, 16)
        for mechanism in (writer, lazy, scan):
            rows.append(
                with_and_without(repeat, mechanism, "check, 20 x 16", ["check"], root, 0.15)
            )
        hook = ["check", "--fix", "--deletions"]
        rows.append(with_and_without(repeat, lazy, "the hook, no YAML changed", hook, root, 0.1))
        ours, _ = import_times(repeat)
        theirs, _ = import_times(repeat, PLAIN[lazy][1])
        rows.append(
            Row(
                f"{lazy}: importing the package for check (-X importtime)",
                ours,
                f"without ({PLAIN[lazy][0]}): {theirs:.3f} s, {1000 * (theirs - ours):+.0f} ms",
                f"<= 0.03 s: {verdict(ours <= 0.03)}, without {verdict(theirs <= 0.03)}",
            )
        )
        rows.append(deferred_imports(repeat))
        changed = experiments[7]
        original = changed.read_text()

        def change_one() -> None:
            text = changed.read_text()
            new = original.replace("learning_rate: 3e-4", "learning_rate: 5e-4")
            changed.write_text(original if text != original else new)

        fix = ["check", "--fix", str(changed)]
        rows.append(
            with_and_without(
                repeat, "renameat2 via ctypes", "the hook, one of 20", fix, root, 0.1, change_one
            )
        )
        large = Path(tmp) / "large"
        shutil.copytree(EXAMPLE, large)
        ranks = ", ".join(str(rank) for rank in range(1, 2001))
        text = (large / "experiment.yaml").read_text().replace("[8, 16, 32, 64]", f"[{ranks}]")
        text = text.replace("  name: lora_rank_study\n", "  name: s\n  max_runs: 2000\n")
        (large / "experiment.yaml").write_text(text)
        subprocess.run([*COMMAND, "generate", str(large)], check=True, capture_output=True)
        check_large = ["check", str(large)]
        rows.append(with_and_without(repeat, writer, "check, 2,000 runs", check_large, root, 1.5))
        values = ", ".join(str(i) for i in range(100))
        sweep = write_experiment(
            Path(tmp) / "sweep", "big", f"  seed: [{values}]\n  lora_rank: [{values}]\n"
        )
        generate = ["generate", "--max-runs", "10000", str(sweep)]
        rows.append(
            with_and_without(
                min(repeat, 3),
                writer,
                "generate 10,000 runs",
                generate,
                Path(tmp),
                10,
                lambda: shutil.rmtree(sweep.parent / "configs", ignore_errors=True),
            )
        )
    for mechanism, (with_it, without_it) in FIRST_CALLS.items():
        mine = statistics.median(first_call(with_it) for _ in range(repeat))
        plain = statistics.median(first_call(without_it) for _ in range(repeat))
        rows.append(
            Row(
                f"{mechanism}: its first call in a process",
                mine,
                f"{1000 * mine:.1f} ms; without ({PLAIN[mechanism][0]}): {1000 * plain:.1f} ms",
            )
        )
    return rows


def results_workloads(repeat: int) -> list[Row]:
    """``results`` of a 2,000-run study whose every run wrote a DiskLogger log of 20 steps
    (a checkpoint for one run in two)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        folder.mkdir()
        (folder / "base.yaml").write_text(
            "output_dir: out\n"
            "checkpointer:\n  _component_: torchtune.training.FullModelTorchTuneCheckpointer\n"
            "  checkpoint_files: [model.pt]\n  output_dir: ${output_dir}\n"
            "metric_logger:\n  _component_: torchtune.training.metric_logging.DiskLogger\n"
            "  log_dir: ${output_dir}/logs\n"
            "optimizer:\n  lr: 0.001\nseed: 0\nepochs: 1\n"
        )
        seeds = ", ".join(str(seed) for seed in range(2000))
        (folder / "experiment.yaml").write_text(
            "experiment:\n  name: study\n  framework: torchtune\n  max_runs: 2000\n"
            "framework_config:\n  base_config_file: base.yaml\n"
            f"variables:\n  seed: [{seeds}]\n"
        )
        for index in range(2000):
            run = folder / "out" / f"run_{index:04d}"
            (run / "logs").mkdir(parents=True)
            lines = "".join(
                f"Step {step} | loss:{5.5 - step * 0.01 - index * 1e-6!r} lr:0.001 "
                f"tokens_per_second_per_gpu:{300.0 + step!r} \n"
                for step in range(1, 21)
            )
            (run / "logs" / "log_1765100000.txt").write_text(lines)
            if index % 2:
                (run / "epoch_0").mkdir()
                (run / "epoch_0" / "model-00001-of-00001.bin").write_bytes(b"w")
        rows = []
        for label, args in (
            ("results, 2,000 runs with logs", ["results", str(folder), "--format", "csv"]),
            ("results --best loss, 2,000 runs", ["results", str(folder), "--best", "loss"]),
        ):
            seconds = median_of(min(repeat, 5), [*COMMAND, *args], folder)
            rows.append(
                Row(label, seconds, "20 log lines a run", f"<= 2 s: {verdict(seconds <= 2)}")
            )
    return rows


def generated_2000_configs(folder: Path, name: str) -> list[Path]:
    """An experiment of 2,000 runs (one per lora_rank) generated in ``folder``: its run configs."""
    ranks = ", ".join(str(rank) for rank in range(1, 2001))
    path = write_experiment(folder, name, f"  lora_rank: [{ranks}]\n")
    limited = path.read_text().replace(f"  name: {name}\n", f"  name: {name}\n  max_runs: 2000\n")
    path.write_text(limited)
    subprocess.run([*COMMAND, "generate", str(path)], check=True, capture_output=True)
    return sorted((path.parent / "configs").glob("run_[0-9]*.yaml"))


def reused_config_workloads(repeat: int) -> list[Row]:
    """ReusedConfig against OmegaConf.create per config, on 2,000 configs (needs torch)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = [str(p) for p in generated_2000_configs(root / "validate", "v")]
        for options, label, budget in (
            (["--no-execute"], "validate --no-execute 2,000 configs", None),
            ([], "validate 2,000 configs, recipes executed", 120.0),
        ):
            validate = ["validate", *options, *configs]
            rows.append(with_and_without(repeat, "ReusedConfig", label, validate, root, budget))
    return rows


# What each import that waits for its use costs when it comes: in a process that has imported
# what `check` imports (the command line, the generator, the drift check and the writer), or,
# for those marked, only what the hook on a commit that changes no YAML file imports.
DEFERRED = {
    "the generator (the hook, no YAML changed)": (
        "import torchtune_config_writer.output.checking",
        True,
    ),
    "the other commands' modules": (
        "from torchtune_config_writer.cli import diff, generate, recipes, schema, show, validate\n"
        "import torchtune_config_writer.output.generating\n"
        "import torchtune_config_writer.output.check_report\n"
        "import torchtune_config_writer.validation.validating",
        False,
    ),
    "tempfile (a new timestamped folder)": ("import tempfile", False),
    "ctypes (renameat2)": ("import ctypes", False),
    "hashlib (a random search; the hook, no YAML changed)": ("import hashlib", True),
    "decimal (a random search)": ("import decimal", False),
    "difflib (a did-you-mean, a diff; the hook, no YAML changed)": ("import difflib", True),
    "omegaconf's grammar (a hard interpolation)": ("import omegaconf.grammar_parser", False),
    "importlib.metadata (torchtune's version)": ("import importlib.metadata", False),
}


# The terminal's libraries: what each would add to the hook's start. Colour and the progress
# line are a few lines of ANSI by hand (the hook's whole import budget is 30 ms); completion
# uses shtab, imported by `completion` alone.
TERMINAL_LIBRARIES = {
    "shtab (completion only)": "shtab",
    "rich.console (colour, width, progress)": "rich.console",
    "colorama (colour on old Windows consoles)": "colorama",
    "difflib (a typo's did-you-mean only)": "difflib",
}


def terminal_library_imports(repeat: int) -> Row:
    costs = []
    for name, module in TERMINAL_LIBRARIES.items():
        if importlib.util.find_spec(module.split(".")[0]) is None:
            costs.append(f"{name}: not installed here")
            continue
        program = f"import time\nstart = time.perf_counter()\nimport {module}\n"
        program += "print(time.perf_counter() - start)"
        times = [
            float(
                subprocess.run(
                    [sys.executable, "-c", program], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(repeat)
        ]
        costs.append(f"{name} {1000 * statistics.median(times):.1f} ms")
    return Row("terminal libraries: what importing each costs", 0.0, "; ".join(costs))


def deferred_imports(repeat: int) -> Row:
    costs = []
    for name, (code, hook_only) in DEFERRED.items():
        before = "import time, torchtune_config_writer.cli.check\n"
        if not hook_only:
            before += "import torchtune_config_writer.output.checking\n"
        program = f"{before}start = time.perf_counter()\n{code}\nprint(time.perf_counter() - start)"
        times = []
        for _ in range(repeat):
            done = subprocess.run(
                [sys.executable, "-c", program], capture_output=True, text=True, check=True
            )
            times.append(float(done.stdout.split()[-1]))
        costs.append(f"{name} {1000 * statistics.median(times):.1f} ms")
    return Row("lazy imports: what each deferred import costs", 0.0, "; ".join(costs))


def validation_workloads(full: bool) -> list[Row]:
    """The static checks (no recipe executed) against ``tune validate`` once per config."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        values = ", ".join(str(4 * (i + 1)) for i in range(64))
        path = write_experiment(root / "exp", "validate", f"  lora_rank: [{values}]\n")
        subprocess.run([*COMMAND, "generate", str(path)], check=True, capture_output=True)
        configs = sorted((path.parent / "configs").glob("run_[0-9]*.yaml"))
        per_config = []
        for count in (1, 8, 64):
            label = "config" if count == 1 else "configs"
            static = [*COMMAND, "validate", "--no-execute"]
            ours = timed([*static, *map(str, configs[:count])], root)
            how = ""
            if count <= 8 or full:
                theirs = sum(timed([TUNE, "validate", str(c)], root) for c in configs[:count])
                per_config.append(theirs / count)
            else:
                theirs = statistics.mean(per_config) * count
                how = "; extrapolated from the runs above (--full measures it)"
            rows.append(Row(f"validate --no-execute {count} {label}, one process", ours))
            budget = f">= 100x: {verdict(theirs / ours >= 100)}" if count == 64 else ""
            rows.append(
                Row(
                    f"tune validate once per config, {count} {label}",
                    theirs,
                    f"{theirs / ours:.1f}x slower{how}",
                    budget,
                )
            )
    return rows


SWEEP_8B = """\
  lora_attn_modules:
    - [q_proj, v_proj]
    - [q_proj, k_proj, v_proj]
    - [q_proj, v_proj, output_proj]
    - [q_proj, k_proj, v_proj, output_proj]
  learning_rate: [1e-4, 2e-4, 3e-4, 5e-4]
  lora_rank: [8, 16, 32, 64]
"""


def execution_workloads() -> list[Row]:
    """Running the recipes: a 64-config 8B LoRA sweep of 4 structures, and what one execution
    of a 1B, an 8B and a 70B config costs in each mode."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = "llama3_1/8B_lora_single_device"
        path = write_experiment(root / "exp", "sweep8b", SWEEP_8B, base)
        subprocess.run([*COMMAND, "generate", str(path)], check=True, capture_output=True)
        for each, label in ((None, "a class of values shares a run"), ("64", "--execute-each 64")):
            options = ["--execute-each", each] if each else []
            report = root / "report.json"
            start = time.perf_counter()
            done = subprocess.run(
                [*COMMAND, "validate", "--json", str(report), *options, str(path)],
                capture_output=True,
                check=False,
            )
            seconds = time.perf_counter() - start
            configs = json.loads(report.read_text())["configs"]
            executed = sum("values: executed" in config["execution"] for config in configs)
            valid = sum(config["status"] == "valid" for config in configs)
            note = (
                f"{label}: {executed} values runs and 4 real-size runs, torch imported in the "
                f"run; {valid} of 64 valid, exit {done.returncode}"
            )
            budget = f"<= 60 s: {verdict(seconds <= 60)}" if each is None else ""
            rows.append(
                Row("validate a 64-config 8B LoRA sweep, 4 structures", seconds, note, budget)
            )
    return rows + one_execution_rows()


ONE_EXECUTION = """
import json, time
from pathlib import Path
import torchtune
from torchtune_config_writer.validation.execution.client import Executor
from torchtune_config_writer.validation.execution.protocol import Mode, Request
root = Path(torchtune.__file__).parent.parent / "recipes" / "configs"
seventy = ((("model", "_component_"), "torchtune.models.llama3_1.lora_llama3_1_70b"),)
cases = [
    ("1B LoRA", "llama3_2/1B_lora_single_device.yaml", ()),
    ("8B LoRA", "llama3_1/8B_lora_single_device.yaml", ()),
    ("70B LoRA", "llama3_1/8B_lora_single_device.yaml", seventy),
]
executor = Executor(jobs=1)
start = time.perf_counter()
executor.run([])
out = {"import": [time.perf_counter() - start, ""]}
for name, config, edits in cases:
    for mode in (Mode.VALUES, Mode.SHAPE):
        request = Request(0, "lora_finetune_single_device", str(root / config), "/tmp", mode, edits)
        (outcome,) = executor.run([request])
        out[f"{name} {mode.value}"] = [outcome.seconds, outcome.status.value]
executor.close()
print(json.dumps(out))
"""


def one_execution_rows() -> list[Row]:
    """What one execution costs once the worker has imported torch (the worker's own clock)."""
    done = subprocess.run(
        [sys.executable, "-c", ONE_EXECUTION], capture_output=True, text=True, check=True
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [Row("execution worker start (imports torch, torchtune)", measured.pop("import")[0])]
    for name, (seconds, status) in measured.items():
        size, mode = name.rsplit(" ", 1)
        how = (
            "tiny size, every micro-batch"
            if mode == "values"
            else "real dimensions, 2 layers, 1 micro-batch"
        )
        rows.append(Row(f"one execution: {size}, {mode}", seconds, f"{how}; {status}"))
    return rows


def large_validation_workloads(repeat: int) -> list[Row]:
    """2,000 configs of one experiment validated in one process, time and peak memory."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = generated_2000_configs(root / "exp", "big")
        peaks = {}
        for count in (250, 2000):
            times, peak = [], 0.0
            for _ in range(repeat if count == 2000 else 1):
                start = time.perf_counter()
                result = subprocess.run(
                    [*WITH_PEAK, "validate", *map(str, configs[:count])],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                times.append(time.perf_counter() - start)
                peak = max(peak, int(result.stderr.split("peak")[-1]) / 1024)
            peaks[count] = peak
        seconds = statistics.median(times)
        runtime = subprocess.run(
            [
                sys.executable,
                "-c",
                "import resource; from torchtune_config_writer.validation.torchtune_runtime "
                "import load_runtime; load_runtime();"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        floor = int(runtime.stdout.split()[-1]) / 1024
    flat = peaks[2000] < peaks[250] + 30
    rows.append(
        Row(
            "validate 2,000 configs, one process, recipes executed",
            seconds,
            f"peak memory {peaks[2000]:.0f} MB (250 configs: {peaks[250]:.0f} MB; importing "
            f"torch and torchtune alone: {floor:.0f} MB)",
            f"<= 120 s: {verdict(seconds <= 120)}; flat: {verdict(flat)}",
        )
    )
    return rows


def hook_workloads(repeat: int) -> list[Row]:
    """What a `git commit` waits for with the pre-commit hooks, through the real pre-commit: the
    drift hook alone, and with the validation hook at the commit stage (it runs at pre-push by
    default, docs/pre-commit.md). The hooks come from a commit of this working tree; the
    validation hook runs this environment's tool, which has torch and torchtune."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "PRE_COMMIT_HOME": str(root / "pre-commit-home"),
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@b",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@b",
        }
        source = root / "hooks"
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name in filter(None, listed.split("\0")):
            if (REPO / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, source / name)
        for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
            subprocess.run(args, cwd=source, check=True, env=env)
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True
        ).stdout.strip()
        tool = Path(sys.executable).with_name("torchtune-config-writer")
        validation = (
            "  - id: validate-torchtune-configs\n    stages: [pre-commit]\n"
            f"    entry: {tool} validate --affected\n"
        )
        for hooks, extra in (("drift hook", ""), ("drift and validation hooks", validation)):
            user = root / hooks.replace(" ", "-")
            shutil.copytree(EXAMPLE, user / "study")
            (user / ".pre-commit-config.yaml").write_text(
                f"repos:\n- repo: {source}\n  rev: {sha}\n  hooks:\n"
                f"  - id: check-torchtune-configs\n{extra}"
            )
            for args in (
                ["git", "init", "-q"],
                ["git", "add", "-A"],
                ["git", "commit", "-qm", "x", "--no-verify"],
                [sys.executable, "-m", "pre_commit", "install"],
                [sys.executable, "-m", "pre_commit", "install-hooks"],
            ):
                subprocess.run(args, cwd=user, check=True, env=env, capture_output=True)
            experiment = user / "study" / "experiment.yaml"
            rates = iter(f"learning_rate: {n}e-5" for n in range(1, 1000))

            def change_the_study(
                experiment: Path = experiment, user: Path = user, rates: Iterator[str] = rates
            ) -> None:
                # A new value, generated and staged: the commit's hooks find no drift.
                text = experiment.read_text()
                start = text.index("learning_rate:")
                end = text.index("\n", start)
                experiment.write_text(text[:start] + next(rates) + text[end:])
                subprocess.run(
                    [*COMMAND, "generate", str(experiment)],
                    cwd=user,
                    check=True,
                    capture_output=True,
                )
                subprocess.run(["git", "add", "-A"], cwd=user, check=True, env=env)

            def readme(user: Path = user) -> None:
                with (user / "README.md").open("a") as file:
                    file.write("A line.\n")
                subprocess.run(["git", "add", "-A"], cwd=user, check=True, env=env)

            commit = ["git", "commit", "-qm", "change"]
            times = min(repeat, 3) if extra else repeat
            for label, before in (
                ("a README change", readme),
                ("one experiment", change_the_study),
            ):
                seconds, cpu = commit_times(times, commit, user, env, before)
                validated = "4 configs validated; " if extra and before is change_the_study else ""
                rows.append(
                    Row(f"git commit of {label}, {hooks}", seconds, f"{validated}CPU {cpu:.1f} s")
                )
    return rows


def commit_times(
    repeat: int, args: list[str], cwd: Path, env: dict[str, str], before: Callable[[], None]
) -> tuple[float, float]:
    """The median seconds of the command, and of the CPU it and its children used (user and
    system, which varies less on a shared machine), each run after ``before``."""
    walls, cpus = [], []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        child = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{args} failed in {cwd}")
    return statistics.median(walls), statistics.median(cpus)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per workload (median)")
    parser.add_argument("--full", action="store_true", help="run tune validate 64 times too")
    parser.add_argument(
        "--only",
        default="drift,large,generate,beyond,recipe,status,results,validate,execute,hooks",
        help="comma-separated workload groups",
    )
    args = parser.parse_args()
    groups = set(args.only.split(","))
    rows: list[Row] = []
    if "drift" in groups:
        rows += drift_workloads(args.repeat)
        rows.append(terminal_library_imports(args.repeat))
    if "large" in groups:
        rows += large_drift_workloads(args.repeat)
    if "generate" in groups:
        rows += generate_workloads()
    if "beyond" in groups:
        rows += beyond_workloads(args.repeat)
    if "recipe" in groups:
        rows += recipe_workloads(args.repeat)
    if "status" in groups:
        rows += status_workloads(args.repeat)
    if "validate" in groups:
        rows += validation_workloads(args.full)
        rows += large_validation_workloads(min(args.repeat, 3))
    if "execute" in groups:
        rows += execution_workloads()
    if "hooks" in groups:
        rows += hook_workloads(args.repeat)
    if "mechanisms" in groups:
        rows += mechanism_workloads(args.repeat)
    if "results" in groups:
        rows += results_workloads(args.repeat)
    if "reused" in groups:
        rows += reused_config_workloads(min(args.repeat, 3))
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}, median of {args.repeat}")
    print()
    print("| workload | time | note | budget |")
    print("|---|---:|---|---|")
    for row in rows:
        seconds = f"{row.seconds:.3f} s" if row.seconds else ""
        print(f"| {row.workload} | {seconds} | {row.note} | {row.budget} |")


if __name__ == "__main__":
    main()
