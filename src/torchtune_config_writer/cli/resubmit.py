"""``resubmit EXP``: submit the job array again for the runs that did not finish and are not
queued or running; ``--dry-run`` prints the sbatch commands instead."""

from __future__ import annotations

import argparse
import shlex
import sys
from fractions import Fraction

from ..errors import ConfigWriterError, ExitCode
from ..runs import resubmit as resubmitting
from ..runs import sbatch as sbatch_module
from ..runs.resubmit import Resubmission
from ..runs.sbatch import Submitted, named_runs
from ..terminal import printable
from ..wording import plural
from .common import add_experiment, add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("resubmit", help=summary)
    add_experiment(parser)
    parser.add_argument(
        "--cancelled",
        action="store_true",
        help="resubmit cancelled runs too (left alone by default: a run someone scancel'd was "
        "usually meant to stop)",
    )
    parser.add_argument(
        "--more-time",
        type=_factor,
        metavar="FACTOR",
        help="timed-out runs get FACTOR times the time limit of launch.slurm.sbatch (e.g. 2)",
    )
    parser.add_argument(
        "--more-memory",
        type=_factor,
        metavar="FACTOR",
        help="runs out of memory get FACTOR times the memory of launch.slurm.sbatch (e.g. 1.5)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the sbatch commands, to run from the experiment's folder; submit nothing",
    )
    add_max_runs(parser)


def _factor(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is no more: give a factor above 1, e.g. 2")
    return value


def run(args: argparse.Namespace) -> int:
    sbatch = None
    if not args.dry_run:
        sbatch = sbatch_module.default_sbatch()
        if sbatch is None:
            raise ConfigWriterError(
                "sbatch is not installed here: resubmit where Slurm's commands are (--dry-run "
                "prints the commands)"
            )
    resubmission = resubmitting.prepare_resubmission(
        args.experiment,
        cancelled=args.cancelled,
        more_time=args.more_time,
        more_memory=args.more_memory,
        max_runs=args.max_runs,
        need_slurm=not args.dry_run,
    )
    # A dry run prints a shell script: everything but the commands is a comment.
    comment = "# " if args.dry_run else ""
    if not resubmission.runs:
        if not args.quiet:
            print(f"{comment}nothing to resubmit; {_left_alone(resubmission)}")
        return ExitCode.OK
    if not args.quiet:
        _print_runs(resubmission, comment)
    if args.dry_run:
        if not args.quiet:
            print(f"# from {printable(str(resubmission.folder))}:")
        for line in sbatch_module.shell_commands(resubmission):
            print(line)
    else:
        assert sbatch is not None

        def said(submitted: Submitted) -> None:
            _print_submitted(submitted, quiet=args.quiet, verbose=args.verbose)
            sys.stdout.flush()  # each job id as soon as it is known, should a later part fail

        sbatch_module.submit(resubmission, sbatch, said)
    if not args.quiet:
        print(f"{comment}{_left_alone(resubmission)}")
    return ExitCode.OK


def _print_runs(resubmission: Resubmission, comment: str) -> None:
    """Which runs are resubmitted and why: their status, and what they get more of."""
    doing = "would resubmit" if comment else "resubmitting"
    print(f"{comment}{doing} {plural(len(resubmission.runs), 'run')}:")
    width = max(len(run.status) for run in resubmission.runs)
    for run in resubmission.runs:
        more = " ".join(resubmission.options[run.id])
        extra = f" [{more}]" if more else ""
        reason = printable(run.reason)  # may quote a task's output: one line, whatever it holds
        print(f"{comment}{run.id}  {run.status.ljust(width)}  {reason}{extra}")
    for note in [*resubmission.notes, *_hints(resubmission)]:
        print(f"{comment}note: {note}")


def _hints(resubmission: Resubmission) -> list[str]:
    """Runs that ran out of time or memory, resubmitted with the same again."""
    hints = []
    for status, option, what in (
        ("timed out", "--more-time", "time limit"),
        ("out of memory", "--more-memory", "memory"),
    ):
        same = [
            r for r in resubmission.runs if r.status == status and not resubmission.options[r.id]
        ]
        if same:
            gets = "gets" if len(same) == 1 else "get"
            named = named_runs([run.id for run in same])
            hints.append(f"{named} {gets} the same {what} again: {option} FACTOR gives more")
    return hints


def _print_submitted(submitted: Submitted, *, quiet: bool, verbose: bool) -> None:
    array = submitted.array
    if quiet:  # only the job ids, for a script
        print(submitted.job)
        if submitted.evaluation_job is not None:
            print(submitted.evaluation_job)
        return
    more = f" with {' '.join(array.options)}" if array.options else ""
    print(f"submitted job {submitted.job}: trains {named_runs(array.runs)}{more}")
    if verbose:
        print(f"  {shlex.join(['sbatch', *array.training])}")
    if submitted.evaluation_job is not None:
        print(
            f"submitted job {submitted.evaluation_job}: evaluates {named_runs(array.runs)} "
            f"after job {submitted.job}"
        )


def _left_alone(resubmission: Resubmission) -> str:
    counts = resubmission.left_alone
    if not counts:
        return "left alone: no run"
    listed = ", ".join(f"{count} {status}" for status, count in counts.items())
    hint = " (--cancelled resubmits cancelled runs)" if "cancelled" in counts else ""
    return f"left alone: {listed}{hint}"
