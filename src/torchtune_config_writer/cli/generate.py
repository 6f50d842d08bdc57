"""``generate EXP...``: write the generated folders, with the original format's three lines each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode, display_path
from ..generation.run_ids import RunIds
from ..output.generating import Generated, generate_many
from ..terminal import check_mark
from ..wording import plural
from ..workspace.layout import CONFIGS_DIR, LOCK_FILE
from .common import add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("generate", help=summary)
    parser.add_argument(
        "experiments",
        nargs="+",
        type=Path,
        metavar="EXP",
        help="an experiment.yaml, or the folder holding one",
    )
    add_max_runs(parser)
    parser.add_argument(
        "--refresh-base",
        action="store_true",
        help="re-read a recipe base from the installed torchtune instead of the "
        "one recorded in configs/",
    )
    parser.add_argument(
        "--renumber",
        action="store_true",
        help="number the runs run_000, run_001, … in sweep order, instead of keeping the ids "
        "configs/run_mapping.yaml gives them (move finished runs' output folders aside first)",
    )
    parser.add_argument(
        "--output-base-dir",
        type=Path,
        metavar="DIR",
        help="write a new timestamped folder in DIR instead of configs/ beside "
        "the experiment (like output.base_dir)",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="then validate the generated configs (needs torch and torchtune); a timestamped "
        "folder gets validation_report.txt",
    )
    from .validate import add_failure_options

    add_failure_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.validate:  # before writing: without torch and torchtune there is nothing to validate
        from ..validation.torchtune_runtime import load_runtime

        load_runtime()
    results = generate_many(
        args.experiments,
        output_base_dir=args.output_base_dir,
        max_runs=args.max_runs,
        refresh_base=args.refresh_base,
        renumber=args.renumber,
    )
    for generated in results:
        if not args.quiet:
            _report(generated, verbose=args.verbose)
        for warning in generated.plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if not args.validate:
        return ExitCode.OK
    return max(_validate(generated, args) for generated in results)


def _report(generated: Generated, *, verbose: bool = False) -> None:
    mark = check_mark()
    base = generated.plan.base
    source = ""
    if base.builtin_config is not None:
        recorded = "recorded, " if base.recorded else ""
        own = generated.plan.experiment.folder / CONFIGS_DIR / LOCK_FILE
        if base.lock is not None and base.lock.parent.parent != own.parent.parent:
            recorded = f"recorded in {display_path(base.lock)}, "  # another experiment's record
        source = f" ({recorded}torchtune {base.torchtune_version})"
    notes = []
    write = generated.write
    if write is not None:
        if write.unchanged:
            notes.append("unchanged")
        if write.removed:
            notes.append(f"removed {len(write.removed)} stale")
    note = f" ({', '.join(notes)})" if notes else ""
    print(f"{mark} Loaded base config: {base.label}{source}")
    evaluated = (
        f" and {plural(generated.plan.run_count, 'evaluation config')}"
        if generated.plan.experiment.evaluation is not None
        else ""
    )
    print(
        f"{mark} Generated {plural(generated.plan.run_count, 'config')}{evaluated} in "
        f"{display_path(generated.folder)}/{note}"
    )
    shown = generated.run_mapping.name if write else display_path(generated.run_mapping)
    verb = "Created"
    if write is not None and generated.run_mapping.name not in write.changed:
        verb = "Kept"
    elif write is not None and generated.run_mapping.name in write.replaced:
        verb = "Updated"
    print(f"{mark} {verb} {shown}{_id_changes(generated.plan.sweep.ids)}")
    if verbose and write is not None:  # each file the write changed, as git status names them
        folder = display_path(generated.folder)
        for name in write.changed:
            print(f"  {'updated' if name in write.replaced else 'added'}: {folder}/{name}")
        for name in write.removed:
            print(f"  removed: {folder}/{name}")
    relative = generated.plan.outputs.relative_keys()
    if relative:
        folder = display_path(generated.plan.experiment.folder)
        print(
            f"! {', '.join(relative)}: relative, so the runs write under {folder}/, where "
            "their commands run (give an absolute path to write elsewhere)"
        )


def _id_changes(ids: RunIds) -> str:
    """`` (kept the runs' ids; new: run_004, run_005; retired: run_001)`` when ids moved."""
    if not ids.added and not ids.retiring:
        return ""
    notes = ["kept the recorded ids"]
    for label, numbers in (("new", ids.added), ("retired", ids.retiring)):
        if numbers:
            shown = ", ".join(ids.name(number) for number in numbers[:5])
            more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
            notes.append(f"{label}: {shown}{more}")
    return f" ({'; '.join(notes)})"


def _validate(generated: Generated, args: argparse.Namespace) -> int:
    # Imported here: validation imports torch, which plain generating never needs.
    from ..validation.reports import REPORT_FILE, render_text
    from ..validation.validating import Target, validate_targets
    from .progress import progress_display
    from .validate import console_report, exit_code, summary

    targets = [Target(config, generated.plan) for config in generated.run_files]
    progress = progress_display(args.quiet)
    try:
        result = validate_targets(targets, progress)
    finally:
        if progress is not None:
            progress.close()
    report = None
    # A timestamped folder: the report goes in it, as the original format shows.
    if generated.write is None:
        report = generated.folder.parent / REPORT_FILE
        report.write_text(render_text(result), encoding="utf-8")
    else:  # configs/ holds only what generating writes, the same on every machine
        sys.stdout.write(console_report(result, args))
    if not args.quiet:
        print(summary(result, report))
    return exit_code(result, args)
