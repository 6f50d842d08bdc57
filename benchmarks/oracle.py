"""The runtime oracle as a table: what `tune run`, `generate` and `validate` say of each case.

    python benchmarks/oracle.py [--only NAME,NAME] [--keep DIR]

Builds the tiny assets and the corpus of ``tests/oracle/corpus.py`` in a temporary folder (or
``--keep DIR``, left in place with every log), trains every config for two steps with the real
``tune run`` (one parent imports torchtune, a forked child per config, two at a time), validates
every config in one call, and prints case | tune run | generate | validate | agree, with totals
and timings. Needs torch and torchtune; downloads nothing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.oracle.assets import build_assets  # noqa: E402
from tests.oracle.corpus import CORPUS, Case, Judged, OracleRun, judge_corpus  # noqa: E402

WIDTH = 70


def _cut(text: str, width: int = WIDTH) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def tune_cell(judged: Judged) -> str:
    """What ``tune run`` did: ``trains``, or the exit code and the one-line reason."""
    failed = [outcome for outcome in judged.outcomes if not outcome.trained]
    runs = f" ({len(judged.outcomes)} runs)" if len(judged.outcomes) > 1 else ""
    if not failed:
        return f"trains{runs}"
    first = failed[0]
    return f"exit {first.exit_code}{runs}: {_cut(first.reason)}"


def generate_cell(judged: Judged) -> str:
    """``generated``, or ``refused:`` and the error without its location."""
    if judged.refusal is None:
        return "generated" + (" (raw config run)" if judged.case.raw else "")
    message = judged.refusal.split(": ", 1)[-1]
    return f"refused: {_cut(message, 60)}"


def validate_cell(judged: Judged) -> str:
    """``no error``, or the key paths of the error findings (of the configs ``tune run`` got)."""
    flagged = judged.flagged
    where = " (raw)" if judged.targets and judged.targets[0].run_id == "raw" else ""
    return f"error at {', '.join(flagged)}{where}" if flagged else f"no error{where}"


def agree_cell(judged: Judged) -> str:
    """``yes`` when our verdict is ``tune run``'s, with which tool caught a failing case."""
    if not judged.tune_run_as_expected:
        return "corpus wrong"
    if not judged.agrees:
        return "no"
    if judged.case.trains:
        return "yes"
    tools = (("generate", judged.refused_for_it), ("validate", judged.flagged_it))
    caught = [name for name, hit in tools if hit]
    return f"yes ({' + '.join(caught)})"


def table(run: OracleRun) -> list[str]:
    """The agreement table, one row per case, Markdown."""
    lines = [
        "| case | expected | tune run | generate | validate | agree | s |",
        "|---|---|---|---|---|---|---:|",
    ]
    for judged in run.judged.values():
        seconds = sum(outcome.seconds for outcome in judged.outcomes)
        lines.append(
            f"| {judged.case.name} | {judged.case.expect} | {tune_cell(judged)} | "
            f"{generate_cell(judged)} | {validate_cell(judged)} | {agree_cell(judged)} | "
            f"{seconds:.2f} |"
        )
    return lines


def counts(run: OracleRun) -> list[str]:
    """Cases and agreement per recipe and per kind of cause, Markdown."""
    lines = []
    for title, key in (
        ("recipe", lambda case: case.recipe + (" (QLoRA)" if case.base == "qlora" else "")),
        ("cause", lambda case: case.cause or "(trains)"),
    ):
        groups: dict[str, list[Judged]] = {}
        for judged in run.judged.values():
            groups.setdefault(key(judged.case), []).append(judged)
        lines += [f"| {title} | cases | train | fail | agree |", "|---|---:|---:|---:|---:|"]
        for name, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
            train = sum(j.case.trains for j in members)
            agree = sum(j.agrees for j in members)
            lines.append(
                f"| {name} | {len(members)} | {train} | {len(members) - train} | {agree} |"
            )
        lines.append("")
    return lines


def totals(run: OracleRun, assets_seconds: float, total: float) -> list[str]:
    """How many agree, and where the time went."""
    judged = list(run.judged.values())
    good = [j for j in judged if j.case.trains]
    bad = [j for j in judged if not j.case.trains]
    outcomes = [outcome for j in judged for outcome in j.outcomes]
    per_case = sorted(outcome.seconds for outcome in outcomes)
    return [
        f"{len(judged)} cases, {len(outcomes)} tune runs: "
        f"{sum(j.agrees for j in judged)} agree "
        f"({sum(j.agrees for j in good)}/{len(good)} that train, "
        f"{sum(j.agrees for j in bad)}/{len(bad)} that fail); "
        f"corpus matches tune run in {sum(j.tune_run_as_expected for j in judged)}/{len(judged)}",
        f"assets {assets_seconds:.2f} s; generate (all) {run.generate_seconds:.2f} s; "
        f"validate (one call) {run.validate_seconds:.2f} s",
        f"tune runner {run.tune.wall_seconds:.2f} s: importing torchtune once "
        f"{run.tune.import_seconds:.2f} s, then per run median "
        f"{per_case[len(per_case) // 2]:.2f} s, max {per_case[-1]:.2f} s, sum "
        f"{sum(per_case):.2f} s (2 at a time)",
        f"total {total:.2f} s (Python {platform.python_version()}, {platform.machine()})",
    ]


def chosen_cases(only: str | None) -> list[Case]:
    """The corpus, or the cases named (comma-separated)."""
    if not only:
        return list(CORPUS)
    names = only.split(",")
    unknown = sorted(set(names) - {case.name for case in CORPUS})
    if unknown:
        raise SystemExit(f"error: no such case: {', '.join(unknown)}")
    return [case for case in CORPUS if case.name in names]


def run(root: Path, cases: list[Case]) -> None:
    """Build, judge and print."""
    start = time.perf_counter()
    assets = build_assets(root / "tiny")
    assets_seconds = time.perf_counter() - start
    result = judge_corpus(cases, root / "cases", assets)
    total = time.perf_counter() - start
    lines = [*table(result), "", *counts(result), *totals(result, assets_seconds, total)]
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--keep", type=Path, help="build in this folder and leave it there")
    options = parser.parse_args()
    cases = chosen_cases(options.only)
    if options.keep is not None:
        options.keep.mkdir(parents=True, exist_ok=True)
        run(options.keep.resolve(), cases)
        print(f"logs: {options.keep.resolve() / 'cases' / 'tune' / 'logs'}")
        return 0
    with tempfile.TemporaryDirectory(prefix="oracle-") as folder:
        run(Path(folder), cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
