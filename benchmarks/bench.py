"""Benchmarks: builds its own workloads in a temporary folder and prints a table.

    python benchmarks/bench.py [--repeat N]

Each workload is timed as whole commands in fresh processes (what a user or the pre-commit hook
waits for), median of N runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lora_rank_study"
COMMAND = [sys.executable, "-m", "torchtune_config_writer"]


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


def drift_workloads(repeat: int) -> list[tuple[str, float, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        experiments = make_repository(root, 20, 16)
        every_yaml = [str(p.relative_to(root)) for p in sorted(root.rglob("*.yaml"))]
        startup = median_of(repeat, [sys.executable, "-c", "pass"], root)
        rows.append(("python startup (reference)", startup, ""))
        rows.append(
            (
                "check, 20 experiments x 16 runs, nothing changed",
                median_of(repeat, [*COMMAND, "check"], root),
                "budget 0.3 s",
            )
        )
        rows.append(
            (
                "check --fix on every YAML file (pre-commit run --all-files)",
                median_of(repeat, [*COMMAND, "check", "--fix", *every_yaml], root),
                f"{len(every_yaml)} files",
            )
        )
        changed = experiments[7]
        original = changed.read_text()

        def change_one() -> None:
            changed.write_text(
                original
                if "0.0005" in changed.read_text()
                else original.replace("learning_rate: 3e-4", "learning_rate: 5e-4")
            )

        rows.append(
            (
                "check --fix after changing one experiment of 20",
                median_of(repeat, [*COMMAND, "check", "--fix", str(changed)], root, change_one),
                "budget 0.3 s; writes 17 files",
            )
        )
    return rows


def validation_workloads(full: bool) -> list[tuple[str, float, str]]:
    """Our one-process ``validate`` against ``tune validate`` once per config."""
    tune = str(Path(sys.executable).with_name("tune"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (experiment,) = make_repository(root, 1, 64)
        configs = sorted((experiment.parent / "configs").glob("run_*.yaml"))
        per_config = []
        for count in (1, 8, 64):
            ours = timed([*COMMAND, "validate", *map(str, configs[:count])], root)
            if count <= 8 or full:
                theirs = sum(timed([tune, "validate", str(c)], root) for c in configs[:count])
                how = ""
            else:  # 64 runs of tune validate take minutes: extrapolated unless --full
                theirs = statistics.mean(per_config) * count
                how = ", tune validate extrapolated from the runs above"
            per_config.append(theirs / count)
            configs_ = "config" if count == 1 else "configs"
            rows.append((f"validate {count} {configs_}, one process", ours, ""))
            rows.append(
                (
                    f"tune validate, once per config, {count} {configs_}",
                    theirs,
                    f"{theirs / ours:.1f}x slower{how}",
                )
            )
    return rows


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
    parser.add_argument("--skip-validation", action="store_true", help="only the drift check")
    args = parser.parse_args()
    rows = drift_workloads(args.repeat)
    if not args.skip_validation:
        rows += validation_workloads(args.full)
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}, median of {args.repeat}")
    print()
    print(f"| {'workload':<62} | {'time':>8} | note |")
    print(f"|{'-' * 64}|{'-' * 10}|------|")
    for name, seconds, note in rows:
        print(f"| {name:<62} | {seconds:>6.3f} s | {note} |")


if __name__ == "__main__":
    main()
