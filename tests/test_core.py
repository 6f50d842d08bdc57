"""The pure core: once read_inputs has read everything, render makes every byte without reading a
file, listing a folder, running git or looking torchtune up, and gives what generate writes."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import torchtune_config_writer as api
from torchtune_config_writer.generation.inputs import Inputs

from .conftest import experiment_text, snapshot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# What reading the disk, listing it or running a program raises as an audit event.
_IO_EVENTS = {
    "open",
    "os.listdir",
    "os.scandir",
    "os.walk",
    "subprocess.Popen",
    "os.system",
    "os.posix_spawn",
    "os.exec",
    "os.fork",
    "import",
}
_guarded: list[list[str]] = []  # the calls running under no_io, innermost last


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _guarded and event in _IO_EVENTS:
        _guarded[-1].append(f"{event} {args[:1]!r}")


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only under no_io


@contextmanager
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every file opened, folder listed, program run or module imported inside; stat
    (no audit event: Path.exists, is_file) fails outright."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the core looked at the disk: stat {args[:1]!r}")

    seen: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(os, "stat", refused)
        patch.setattr(os, "lstat", refused)
        _guarded.append(seen)
        try:
            yield seen
        finally:
            _guarded.pop()


def rendered_without_io(inputs: Inputs, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    api.render(inputs, **kwargs)  # first, so that its own lazy imports are done
    with no_io(monkeypatch) as seen:
        files = api.render(inputs, **kwargs)
    assert seen == []
    return files


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.iterdir() if (p / "experiment.yaml").is_file())
)
def test_each_example_renders_its_committed_bytes_from_inputs_alone(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder)
    inputs = api.read_inputs(folder / "experiment.yaml")
    files = rendered_without_io(inputs, monkeypatch)
    assert files == snapshot(folder / "configs")


def test_render_is_what_generate_writes_for_a_recipe_file_and_a_timestamped_folder(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A recipe file of the user's (copied into a timestamped folder), a custom base, several
    # processes, a {run_id} in a path: every input the reading step gathers is used.
    path = write_experiment(
        experiment_text(
            variables="seed: [1, 2]",
            controls="output_dir: /scratch/{run_id}",
            base="base_config_file: base.yaml\n  recipe: my_recipe.py",
        )
        + "launch:\n  nproc_per_node: 2\n  slurm:\n    sbatch: {partition: gpu}\n"
    )
    (path.parent / "base.yaml").write_text("seed: 0\noutput_dir: /tmp/x\nepochs: 1\n")
    (path.parent / "my_recipe.py").write_text("print('trains')\n")
    inputs = api.read_inputs(path)
    stamped = rendered_without_io(inputs, monkeypatch, generation="study_20260101_000000")
    assert stamped["my_recipe.py"] == b"print('trains')\n"
    assert stamped["experiment.yaml"] == path.read_bytes()
    assert "--nproc_per_node 2 my_recipe.py" in stamped["configs/slurm_array.sh"].decode()
    api.generate(path)
    assert rendered_without_io(inputs, monkeypatch) == snapshot(path.parent / "configs")


def test_the_recorded_ids_are_read_once_and_kept_by_the_core(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2, 3]"))
    api.generate(path)
    path.write_text(path.read_text().replace("[1, 2, 3]", "[1, 3]"))
    inputs = api.read_inputs(path)
    assert inputs.recorded_mapping is not None
    files = rendered_without_io(inputs, monkeypatch)
    assert sorted(name for name in files if name.startswith("run_0")) == [
        "run_000.yaml",
        "run_002.yaml",  # seed 3 keeps the id the committed mapping gave it
    ]
    assert api.read_inputs(path, renumber=True).recorded_mapping is None


def test_bad_input_found_by_the_core_is_one_error_at_the_experiment_line(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_experiment(experiment_text(controls="lora_rnk: 8"))
    inputs = api.read_inputs(path)  # reading finds nothing wrong: the key is the core's to judge
    with no_io(monkeypatch) as seen, pytest.raises(api.ConfigWriterError) as caught:
        api.render(inputs)
    assert seen == []
    assert "lora_rnk" in str(caught.value) and "experiment.yaml:7:" in str(caught.value)


def test_the_guard_sees_a_file_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The guard itself can fail: reading a file under it is recorded, a stat refused.
    (tmp_path / "f").write_text("x")
    with no_io(monkeypatch) as seen:
        with open(tmp_path / "f", encoding="utf-8") as file:
            file.read()
        with pytest.raises(AssertionError, match="looked at the disk"):
            (tmp_path / "f").exists()
    assert seen and seen[0].startswith("open")
