"""``check [PATH...] [--fix]``: the drift check, as diffs and one line per drifted folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode, display_path
from ..wording import plural
from ..workspace.affected import experiments_in, repository_experiments, submodules
from ..workspace.deletions import deleted_files
from ..workspace.repository import repository_root
from .common import add_max_runs, check_mark


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser(
        "check",
        help=summary,
        description="Regenerate in memory and compare with disk; exit 1 on drift, fixed or not.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="an experiment, a file in a generated folder, or a base config file that "
        "experiments use (default: every experiment in the git repository)",
    )
    parser.add_argument(
        "--fix", action="store_true", help="write the regenerated folders (still exits 1)"
    )
    parser.add_argument(
        "--deletions",
        action="store_true",
        help="also check what the files deleted by the staged changes leave behind (or, under "
        "`pre-commit run --from-ref/--to-ref`, by those commits), read from git: pre-commit "
        "passes only files that exist; with no PATH, only that (the pre-commit hooks use it)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (diffs and one line per folder) or json (every folder's state, for tools "
        "such as the GitHub Action)",
    )
    add_max_runs(parser)


def run(args: argparse.Namespace) -> int:
    if args.format == "json":
        return _run_json(args)
    return _run_text(args)


def _run_json(args: argparse.Namespace) -> int:
    """The whole result as one JSON document on standard output; errors are in it too."""
    from ..output.check import check
    from ..output.report import check_json

    deleted = deleted_files(Path(".")) if args.deletions else []
    if args.deletions and not args.paths and not deleted:
        from ..output.check import CheckResult

        result = CheckResult()
    else:
        result = check(args.paths, fix=args.fix, max_runs=args.max_runs, deleted=deleted)
    sys.stdout.write(check_json(result))
    return result.exit_code


def _run_text(args: argparse.Namespace) -> int:
    deleted = deleted_files(Path(".")) if args.deletions else []
    if args.deletions and not args.paths and not deleted:
        # The hook on a commit that changes no YAML file and deletes none: nothing can have
        # drifted. One `git diff` was the cost: the generator is imported only below (54 ms).
        print(f"{check_mark()} 0 experiments up to date")
        return ExitCode.OK
    from ..generation import base
    from ..output.check import check
    from ..output.drift import describe, summary

    result = check(args.paths, fix=args.fix, max_runs=args.max_runs, deleted=deleted)
    # A file that is no experiment may be a base config, whose users only a repository lists:
    # outside one, "0 experiments up to date" alone would read as "nothing uses it".
    outside = repository_root(Path(".")) is None
    for path in args.paths if outside else []:
        if path.is_file() and not experiments_in(path) and repository_root(path.parent) is None:
            print(
                f"note: {display_path(path)}: not inside a git repository, so the experiments "
                "that use it as their base config cannot be found: name them "
                "(check EXPERIMENT...)",
                file=sys.stderr,
            )
    for error in (one for found in result.errors for one in found.errors):
        print(f"error: {error}", file=sys.stderr)
    drifted = [drift for drift in result.drifts if drift.drifted]
    for drift in drifted:
        sys.stdout.writelines(describe(drift))
    for drift in drifted:
        sys.stdout.writelines(summary(drift))
    for fixed in result.fixed:
        folder = display_path(fixed.folder)
        print(
            f"fixed: wrote {folder}/ ({len(fixed.changed)} written, {len(fixed.removed)} "
            f"removed): review it and `git add {folder}`"
        )
    # The folder of a removed experiment holds the user's runs' history: --fix never deletes it.
    kept = " (--fix leaves it: it holds the runs' history)" if args.fix else ""
    for orphan in result.orphans:
        print(
            f"stale: {display_path(orphan)}/ (its experiment.yaml is gone): delete the folder or "
            f"restore the experiment{kept}"
        )
    if drifted and not result.fixed:
        hint = "after fixing the errors above, " if result.errors else ""
        print(f"{hint}run `torchtune-config-writer check --fix` to regenerate")
    # The lock wins over the installed torchtune; a different one is said once, as the note of
    # one run (the records stay as they are until --refresh-base).
    recorded = sorted(
        {
            version
            for drift in result.drifts
            if drift.plan.base.recorded and (version := drift.plan.base.torchtune_version)
        }
    )
    installed = base.installed_torchtune_version() if recorded else None
    if installed is not None and recorded != [installed]:
        print(
            f"note: the recorded base configs come from torchtune {', '.join(recorded)}, and "
            f"torchtune {installed} is installed here: the records are used "
            "(`generate --refresh-base` re-reads them)",
            file=sys.stderr,
        )
    # git ls-files does not enter submodules: their experiments would be skipped silently.
    for submodule in submodules(Path(".")) if not args.paths and not args.deletions else []:
        count = len(repository_experiments(submodule))
        if count:
            shown = display_path(submodule)
            what = "its 1 experiment was" if count == 1 else f"its {count} experiments were"
            pronoun = "it" if count == 1 else "them"
            print(
                f"note: {shown}/ is a git submodule: {what} not checked; check {pronoun} from "
                f"inside (cd {shown} && torchtune-config-writer check)",
                file=sys.stderr,
            )
    if result.exit_code == ExitCode.OK:
        print(f"{check_mark()} {plural(len(result.drifts), 'experiment')} up to date")
    return result.exit_code
