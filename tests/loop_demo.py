"""The watch, resubmit, collect loop of docs/slurm.md, run for real: writes what each command
printed, and the plot, into a folder.

    python -m tests.loop_demo OUT

A tiny CPU stand-in of examples/lora_eval_study (its LoRA grid on the tiny llama2 of
tests/oracle/assets.py, two epochs, no evaluation: lm_eval cannot be installed here) is submitted
to the one-node Slurm cluster of tests/slurm_cluster.py, with accounting; its third run fails on
its first submission. Needs root (the cluster), torch and torchtune. Paths are fixed (under
/tmp/tcw-loop) so that the docs read the same after every run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.oracle.assets import LORA, RECIPES, build_assets
from tests.slurm_cluster import running_cluster

ROOT = Path("/tmp/tcw-loop")
COMMAND = [sys.executable, "-m", "torchtune_config_writer"]

EXPERIMENT = f"""\
experiment:
  name: lora_eval_study
  framework: torchtune
  question: "Does a higher LoRA rank help, and at which learning rate?"

framework_config:
  base_config_file: base.yaml
  recipe: {RECIPES[LORA]}

variables:
  model.lora_rank: [2, 8]
  optimizer.lr: [0.001, 0.003]

controls:
  epochs: 2
  max_steps_per_epoch: 4
  output_dir: {ROOT}/results/lora_eval_study

launch:
  slurm:
    sbatch: {{time: "00:10:00"}}
    setup:
      - 'if [[ -e {ROOT}/fail_once && $run == 2 ]]; then rm {ROOT}/fail_once; exit 3; fi'
"""


def main(out: Path) -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    assets = build_assets(ROOT / "tiny")
    study = ROOT / "lora_eval_study"
    study.mkdir()
    shutil.copyfile(assets.bases[LORA], study / "base.yaml")
    (study / "experiment.yaml").write_text(EXPERIMENT)
    (ROOT / "fail_once").touch()
    transcript: list[str] = []
    with running_cluster(cpus=4, max_array_size=8, accounting=True) as cluster:
        env = {
            **cluster.env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "COLUMNS": "100",
        }

        def run(*args: str, shown: str | None = None) -> str:
            done = subprocess.run(args, cwd=study, env=env, capture_output=True, text=True)
            text = done.stdout + done.stderr
            transcript.append(f"$ {shown or ' '.join(args)}\n{text}")
            return done.stdout

        run(*COMMAND, "generate", ".", shown="torchtune-config-writer generate .")
        job = run("sbatch", "--parsable", "configs/slurm_array.sh").strip()
        cluster.wait(job)
        tool = "torchtune-config-writer"
        run(*COMMAND, "status", ".", shown=f"{tool} status .")
        submitted = run(*COMMAND, "resubmit", ".", shown=f"{tool} resubmit .")
        for again in re.findall(r"submitted job (\d+)", submitted):
            cluster.wait(again)
        run(*COMMAND, "status", ".", shown=f"{tool} status .")
        run(*COMMAND, "results", ".", shown=f"{tool} results .")
        best = f"{tool} results . --best loss --min"
        run(*COMMAND, "results", ".", "--best", "loss", "--min", shown=best)
        run(
            *COMMAND, "results", ".", "--metrics", "loss", "--plot", "loop.png",
            shown=f"{tool} results . --metrics loss --plot loop.png",
        )  # fmt: skip
        shutil.copyfile(study / "loop.png", out / "loop.png")
    (out / "transcript.txt").write_text("\n".join(transcript))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
