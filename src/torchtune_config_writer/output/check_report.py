"""``check``'s result as its reports show it: one :class:`CheckReport`, written as the text
``check`` prints (:func:`write_text`) or as JSON (:func:`render_json`, ``check --format json``).

The JSON holds the whole report, diffs, notes and hint included, so :func:`read_json` gives it
back and the text can be written from it again: the GitHub Action runs ``check`` once, for JSON,
and prints the text with ``python -m torchtune_config_writer.output.check_report REPORT.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ..errors import ConfigWriterError, ExitCode, relative_path
from ..json_output import json_text
from ..terminal import check_mark, escaped_output, printable
from ..wording import plural

if TYPE_CHECKING:  # the generator loads only with a real check: the hook's quick exit never
    from .checking import CheckResult
    from .drift import FileDrift

# Where the CRLF comes from is git's checkout (core.autocrlf): this pattern keeps every generated
# folder LF whatever the setting, and also covers folders added later.
_EOL_HINT = 'add "**/configs/** text eol=lf" to .gitattributes'
_LINE_ENDINGS = "line endings"


@dataclass(frozen=True)
class FolderState:
    """One experiment checked, and how its generated folder differs.

    Attributes:
        experiment: The experiment file, as the user would type it (relative to the cwd).
        folder: Its generated folder, likewise.
        files: ``(name, state)`` of each file that differs, the state ``changed``, ``missing``,
            ``stale`` or ``line endings`` (only CRLF line endings differ).
        diff: The changed files' unified diffs, as ``check`` prints them (a change repeated
            across files once, ``missing:`` and ``stale:`` lines), or ``""``.
    """

    experiment: str
    folder: str
    files: tuple[tuple[str, str], ...] = ()
    diff: str = ""

    @property
    def drifted(self) -> bool:
        """Whether anything differs."""
        return bool(self.files)


@dataclass(frozen=True)
class FixedFolder:
    """What ``--fix`` wrote to one generated folder: the names written and removed."""

    folder: str
    written: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found, as its reports show it: plain text and paths, nothing to compute.

    Attributes:
        exit_code: 0 clean, 1 drift (fixed or not), 2 bad input.
        experiments: Every experiment checked, in order; clean ones included.
        stale_folders: Generated folders whose experiment file is gone.
        fixed: What ``--fix`` wrote.
        errors: The experiments that could not be checked, one message each.
        notes: What the check could not do or chose not to, and why.
        fix: Whether ``--fix`` was given (it never deletes a stale folder: the lines say so).
        hint: What to run when a folder drifted and nothing was written, else ``None``.
    """

    exit_code: int = ExitCode.OK
    experiments: tuple[FolderState, ...] = ()
    stale_folders: tuple[str, ...] = ()
    fixed: tuple[FixedFolder, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fix: bool = False
    hint: str | None = None


# What regenerates, as a user types it where the tool is on their PATH.
FIX_COMMAND = "torchtune-config-writer check --fix"


def check_report(
    result: CheckResult, *, fix: bool = False, fix_command: str = FIX_COMMAND
) -> CheckReport:
    """The report of a check: paths relative to the cwd, each drifted folder's diff rendered.

    Args:
        result: What :func:`~torchtune_config_writer.output.checking.check` found.
        fix: Whether it was asked to fix.
        fix_command: The command the hint names (under pre-commit, the tool's absolute path).
    """
    from .drift import describe

    experiments = tuple(
        FolderState(
            relative_path(drift.plan.experiment.path),
            relative_path(drift.folder),
            tuple((file.name, _state(file)) for file in drift.files),
            "".join(describe(drift)),
        )
        for drift in result.drifts
    )
    hint = None
    if not result.fixed and any(state.drifted for state in experiments):
        first = "after fixing the errors above, " if result.errors else ""
        hint = f"{first}run `{fix_command}` to regenerate"
    return CheckReport(
        exit_code=int(result.exit_code),
        experiments=experiments,
        stale_folders=tuple(relative_path(orphan) for orphan in result.orphans),
        fixed=tuple(
            FixedFolder(relative_path(fixed.folder), tuple(fixed.changed), tuple(fixed.removed))
            for fixed in result.fixed
        ),
        errors=tuple(str(one) for found in result.errors for one in found.errors),
        notes=tuple(result.notes),
        fix=fix,
        hint=hint,
    )


def _state(file: FileDrift) -> str:
    if file.on_disk is None:
        return "missing"
    if file.generated is None:
        return "stale"
    return _LINE_ENDINGS if file.line_endings_only else "changed"


Stream = Literal["out", "err"]


def text_lines(
    report: CheckReport, *, mark: str = "✓", quiet: bool = False, verbose: bool = False
) -> Iterator[tuple[Stream, str]]:
    """The text ``check`` prints, a piece at a time with the stream it goes to: errors, then
    each drifted folder's diffs, one ``drift:`` line per drifted folder (the drift summary),
    what ``--fix`` wrote, stale folders and the hint on standard output, then the notes, and
    ``✓ N experiments up to date`` when all is clean. Every piece ends with a newline.

    Args:
        report: The check's report.
        mark: The check mark (``*`` for a terminal that cannot show ``✓``).
        quiet: Leave out the ``✓`` line (``check -q``): only problems are printed.
        verbose: Name each experiment that is up to date too (``check -v``).
    """
    for error in report.errors:
        yield "err", f"error: {error}\n"
    drifted = [state for state in report.experiments if state.drifted]
    for state in drifted:
        if state.diff:
            yield "out", state.diff
    for state in drifted:
        yield "out", _summary(state)
    for fixed in report.fixed:
        folder = printable(fixed.folder)
        yield (
            "out",
            (
                f"fixed: wrote {folder}/ ({len(fixed.written)} written, {len(fixed.removed)} "
                f"removed): review it and `git add {folder}`\n"
            ),
        )
    # The folder of a removed experiment holds the user's runs' history: --fix never deletes it.
    kept = " (--fix leaves it: it holds the runs' history)" if report.fix else ""
    for orphan in report.stale_folders:
        yield (
            "out",
            (
                f"stale: {printable(orphan)}/ (its experiment.yaml is gone): delete the folder or "
                f"restore the experiment{kept}\n"
            ),
        )
    if report.hint is not None:
        yield "out", report.hint + "\n"
    for note in report.notes:
        yield "err", f"note: {note}\n"
    if verbose:
        for state in report.experiments:
            if not state.drifted:
                yield "out", f"up to date: {printable(state.folder)}/\n"
    if report.exit_code == ExitCode.OK and not quiet:
        yield "out", f"{mark} {plural(len(report.experiments), 'experiment')} up to date\n"


def _summary(state: FolderState) -> str:
    """The one ``drift:`` line of a folder, saying which files differ only in line endings."""
    shown = printable(state.folder)
    crlf = sum(file_state == _LINE_ENDINGS for _, file_state in state.files)
    changed = len(state.files) - crlf
    if not changed:
        return f"drift: {shown}/ differs only in line endings (CRLF): {_EOL_HINT}\n"
    line = (
        f"drift: {shown}/ differs from {printable(state.experiment)} in {plural(changed, 'file')}"
    )
    if crlf:
        more = plural(crlf, "more file")
        line += f", and only in line endings (CRLF) in {more}: {_EOL_HINT}"
    return line + "\n"


def write_text(
    report: CheckReport,
    out: TextIO,
    err: TextIO,
    *,
    mark: str = "✓",
    quiet: bool = False,
    verbose: bool = False,
) -> None:
    """Write the text report: :func:`text_lines`, each piece to ``out`` or ``err``."""
    for stream, text in text_lines(report, mark=mark, quiet=quiet, verbose=verbose):
        (out if stream == "out" else err).write(text)


def render_json(report: CheckReport) -> str:
    """The report as JSON (docs/commands.md shows it): ``exit_code``; ``experiments``, each
    with ``experiment``, ``folder``, ``drifted`` and ``files`` (``name``, ``state``);
    ``stale_folders``; ``fixed`` (``folder``, ``written``, ``removed``); ``errors``; ``notes``;
    ``hint`` (or ``null``); ``fix``; and ``diffs``, the text of each drifted folder's diffs
    (``folder``, ``diff``). Paths are as the user would type them, exactly; ASCII, with no
    workflow command (:func:`~torchtune_config_writer.json_output.json_text`).
    """
    document: dict[str, Any] = {
        "exit_code": report.exit_code,
        "experiments": [
            {
                "experiment": state.experiment,
                "folder": state.folder,
                "drifted": state.drifted,
                "files": [{"name": name, "state": kind} for name, kind in state.files],
            }
            for state in report.experiments
        ],
        "stale_folders": list(report.stale_folders),
        "fixed": [
            {"folder": fixed.folder, "written": list(fixed.written), "removed": list(fixed.removed)}
            for fixed in report.fixed
        ],
        "errors": list(report.errors),
        "notes": list(report.notes),
        "hint": report.hint,
        "fix": report.fix,
        "diffs": [
            {"folder": state.folder, "diff": state.diff}
            for state in report.experiments
            if state.diff
        ],
    }
    return json_text(document)


def read_json(text: str, source: Path | None = None) -> CheckReport:
    """The report :func:`render_json` wrote.

    Raises:
        ConfigWriterError: ``text`` is not such a report.
    """
    try:
        data = json.loads(text)
        diffs = {entry["folder"]: entry["diff"] for entry in data["diffs"]}
        return CheckReport(
            exit_code=int(data["exit_code"]),
            experiments=tuple(
                FolderState(
                    entry["experiment"],
                    entry["folder"],
                    tuple((file["name"], file["state"]) for file in entry["files"]),
                    diffs.get(entry["folder"], ""),
                )
                for entry in data["experiments"]
            ),
            stale_folders=tuple(data["stale_folders"]),
            fixed=tuple(
                FixedFolder(entry["folder"], tuple(entry["written"]), tuple(entry["removed"]))
                for entry in data["fixed"]
            ),
            errors=tuple(data["errors"]),
            notes=tuple(data["notes"]),
            fix=bool(data["fix"]),
            hint=None if data["hint"] is None else str(data["hint"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigWriterError(
            f"is not a report of `check --format json` ({type(exc).__name__}: {exc})", source
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m torchtune_config_writer.output.check_report REPORT.json``: print the text
    ``check`` prints, from its JSON report, all to standard output in the order ``check`` writes
    it (the GitHub Action's log). Exit code 2 when the file is no such report, else 0."""
    args = sys.argv[1:] if argv is None else argv
    with escaped_output():
        if len(args) != 1:
            print("error: give one file written by `check --format json`", file=sys.stderr)
            return ExitCode.BAD_INPUT
        path = Path(args[0])
        try:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise ConfigWriterError(f"cannot read: {exc.strerror or exc}", path) from None
            report = read_json(raw.decode("utf-8", "replace"), path)
        except ConfigWriterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        write_text(report, sys.stdout, sys.stdout, mark=check_mark())
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
