"""What the tool never does to your files, under faults: kills, full and read-only disks, symlinks
out of the repository, and environments without torchtune."""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.output import swap, write
from torchtune_config_writer.workspace.layout import is_owned

from .conftest import RECIPE, CliResult, experiment_text, snapshot, torchtune_version

OLD = experiment_text(variables="seed: [1, 2, 3]")
NEW = experiment_text(variables="seed: [1, 2]", controls="epochs: 2")


def owned(folder: Path) -> dict[str, bytes]:
    """The generated files of a folder (what must be all old or all new)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if is_owned(p)}


def leftovers(experiment_folder: Path) -> list[str]:
    return sorted(p.name for p in experiment_folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def states(tmp_path: Path) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A template experiment folder generated from OLD, with a file of the user's in configs/,
    and the generated files of OLD and of NEW."""
    template = tmp_path / "template" / "exp"
    template.mkdir(parents=True)
    (template / "experiment.yaml").write_text(OLD)
    generate(template)
    (template / "configs" / "NOTES.md").write_text("the user's own notes\n")
    (template / "experiment.yaml").write_text(NEW)
    new_folder = tmp_path / "new" / "exp"  # NEW generated over OLD (its mapping keeps the ids)
    shutil.copytree(template, new_folder)
    generate(new_folder)
    return template, owned(template / "configs"), owned(new_folder / "configs")


# ---- killed at every filesystem step ----

_STEPS = [(pathlib.Path, name) for name in ("write_bytes", "touch", "mkdir", "rename", "unlink")]


def generate_killed_after(steps: int, folder: Path) -> int:
    """Generate in a forked child that dies (like SIGKILL: no cleanup) after ``steps``
    filesystem operations; returns its exit code (0 if it finished first)."""
    pid = os.fork()
    if pid == 0:  # the child: count every write, rename and removal, die at the limit
        done = [0]

        def counted(function: Callable[..., object]) -> Callable[..., object]:
            def step(*args: object, **kwargs: object) -> object:
                done[0] += 1
                if done[0] > steps:
                    os._exit(9)
                return function(*args, **kwargs)

            return step

        for owner, name in _STEPS:
            setattr(owner, name, counted(getattr(owner, name)))
        write.shutil.rmtree = counted(shutil.rmtree)  # type: ignore[attr-defined]
        swap._exchange = counted(swap._exchange)  # type: ignore[attr-defined]
        write.write_file = counted(write.write_file)  # type: ignore[attr-defined]
        try:
            generate(folder)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_write_killed_at_any_step_leaves_old_or_new_and_the_next_run_finishes(
    states: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path
) -> None:
    template, old, new = states
    killed_at = []
    for steps in range(200):
        folder = tmp_path / f"killed_{steps}" / "exp"
        shutil.copytree(template, folder)
        code = generate_killed_after(steps, folder)
        assert owned(folder / "configs") in (old, new), f"a mix after {steps} steps"
        generate(folder)  # the next run cleans up and finishes
        assert owned(folder / "configs") == new
        assert (folder / "configs" / "NOTES.md").read_text() == "the user's own notes\n"
        assert leftovers(folder.parent / "exp") == [] and leftovers(folder / "configs") == []
        if code == 0:
            break
        assert code == 9
        killed_at.append(steps)
    assert len(killed_at) > 10  # the write was cut at every one of its steps


@pytest.mark.slow
def test_sigkill_at_random_moments_of_the_write_never_leaves_a_mix(
    tmp_path: Path, write_experiment: Callable[..., Path]
) -> None:
    values = ", ".join(str(i) for i in range(RUNS))
    path = write_experiment(experiment_text(variables=f"seed: [{values}]"))
    generate(path, max_runs=RUNS)
    old = owned(path.parent / "configs")
    rng = random.Random(20261124)
    for trial in range(6):
        text = experiment_text(variables=f"seed: [{values}]", controls=f"epochs: {trial + 2}")
        path.write_text(text)
        command = [sys.executable, "-m", "torchtune_config_writer", "generate", str(path)]
        child = subprocess.Popen(
            [*command, "--max-runs", str(RUNS)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Once the new folder is being staged (not during imports or planning), at a random
        # moment of the write.
        deadline = time.monotonic() + 60
        while not any(".tcw-" in p.name for p in path.parent.iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, "it never started writing"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL, f"trial {trial}: the write ended before the kill"
        assert owned(path.parent / "configs") in (old,) or _all_epochs(path, trial + 2), trial
        generate(path, max_runs=RUNS)
        old = owned(path.parent / "configs")
        assert _all_epochs(path, trial + 2) and leftovers(path.parent) == []


RUNS = 2000


def _all_epochs(path: Path, epochs: int) -> bool:
    runs = list((path.parent / "configs").glob("run_[0-9]*.yaml"))
    return len(runs) == RUNS and all(f"\nepochs: {epochs}\n" in p.read_text() for p in runs)


# ---- full and read-only disks (a real tmpfs) ----


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def generated_on(disk: Path, cli: Callable[..., CliResult]) -> Path:
    """An experiment of two runs, generated on ``disk``; its folder."""
    folder = disk / "exp"
    folder.mkdir()
    (folder / "experiment.yaml").write_text(experiment_text(variables="seed: [1, 2]"))
    assert cli("generate", folder).code == 0
    return folder


def test_a_full_disk_gives_a_clear_error_and_no_partial_folder(
    small_disk: Path, cli: Callable[..., CliResult]
) -> None:
    folder = generated_on(small_disk, cli)
    before = snapshot(small_disk)
    values = ", ".join(str(i) for i in range(200))  # ~400 kB of configs on a 160 kB disk
    (folder / "experiment.yaml").write_text(experiment_text(variables=f"seed: [{values}]"))
    for command in (("generate",), ("check", "--fix")):
        result = cli(*command, folder)
        assert result.code == 2, result.out + result.err
        assert result.err.startswith("error: ") and "No space left on device" in result.err
        assert "Traceback" not in result.err and len(result.err.splitlines()) == 1
        after = snapshot(small_disk)
        assert {k: v for k, v in after.items() if k != "exp/experiment.yaml"} == {
            k: v for k, v in before.items() if k != "exp/experiment.yaml"
        }
        assert leftovers(folder) == []


def test_a_read_only_disk_gives_a_clear_error(
    small_disk: Path, cli: Callable[..., CliResult]
) -> None:
    folder = generated_on(small_disk, cli)
    (folder / "experiment.yaml").write_text(experiment_text(variables="seed: [1, 2, 3]"))
    before = snapshot(small_disk)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = cli("generate", folder)
    assert result.code == 2 and "Read-only file system" in result.err
    assert result.err.startswith("error: ") and len(result.err.splitlines()) == 1
    assert ".tcw-" not in result.err, result.err  # the folder asked for, not staging names
    assert snapshot(small_disk) == before


# ---- symlinks out of the repository ----


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def test_a_generated_folder_that_is_a_symlink_is_refused(
    repository: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = repository / "exp"
    folder.mkdir()
    (folder / "experiment.yaml").write_text(experiment_text())
    (folder / "configs").symlink_to(outside)
    result = cli("generate", folder)
    assert result.code == 2 and "is a symlink" in result.err
    assert list(outside.iterdir()) == []


def test_an_experiment_folder_linked_from_outside_is_not_written(
    repository: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    outside = tmp_path / "outside" / "exp"
    outside.mkdir(parents=True)
    (outside / "experiment.yaml").write_text(experiment_text())
    (repository / "exp").symlink_to(outside)
    result = cli("generate", repository / "exp")
    assert result.code == 2 and "leads out of the repository through a symlink" in result.err
    assert sorted(p.name for p in outside.iterdir()) == ["experiment.yaml"]


def test_a_base_config_file_linked_out_of_the_repository_is_refused(
    repository: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    from torchtune_config_writer.generation.builtin_configs import installed_torchtune

    outside = tmp_path / "outside.yaml"
    outside.write_bytes(installed_torchtune().find(RECIPE).path.read_bytes())
    folder = repository / "exp"
    folder.mkdir()
    (folder / "base.yaml").symlink_to(outside)
    (folder / "experiment.yaml").write_text(experiment_text(base="base_config_file: base.yaml"))
    result = cli("generate", folder)
    assert result.code == 2, result.err
    assert (
        ":5:3: base_config_file base.yaml leads out of the repository through a symlink"
        in result.err
    )
    # Naming the outside file itself is the user's explicit choice.
    (folder / "experiment.yaml").write_text(experiment_text(base=f"base_config_file: {outside}"))
    assert cli("generate", folder).code == 0


# ---- the same bytes without torchtune ----


def test_without_torchtune_the_recorded_base_gives_the_same_bytes(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    generate(path)  # with torchtune: resolves the recipe and records it
    with_torchtune = snapshot(path.parent)
    copy = tmp_path / "elsewhere" / "exp"
    shutil.copytree(path.parent, copy)
    for run in copy.glob("configs/run_*.yaml"):
        run.unlink()
    # Only PyYAML and this package on the path: no site-packages, so no torchtune.
    site = tmp_path / "site"
    site.mkdir()
    import yaml

    import torchtune_config_writer

    for module in (yaml, torchtune_config_writer):
        (site / Path(module.__file__).parent.name).symlink_to(Path(module.__file__).parent)
    script = (
        "import sys, importlib.util;"
        f"sys.path[:0] = [{str(site)!r}];"
        "assert importlib.util.find_spec('torchtune') is None;"
        "from torchtune_config_writer.cli import main;"
        f"sys.exit(main(['generate', {str(copy)!r}]))"
    )
    result = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"(recorded, torchtune {torchtune_version()})" in result.stdout
    assert snapshot(copy) == with_torchtune
