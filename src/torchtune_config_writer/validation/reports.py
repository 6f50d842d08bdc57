"""Reports of a validation: text, GitHub Markdown, JSON and GitHub annotations, all pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

from ..errors import display_path, relative_path
from ..json_output import json_text
from ..markdown import code as _code
from ..terminal import printable
from ..wording import plural
from .findings import ConfigResult, Finding, Severity, Status, ValidationResult

TITLE = "torchtune-config-writer validation report"
REPORT_FILE = "validation_report.txt"

_STATUS_WORDS = {"warning": "with warnings"}
_NOUNS = {"unverified": "unverified finding"}
_MARKS = {"valid": "✅", "warning": "⚠️", "unverified": "❔", "invalid": "❌", "error": "❌"}
# Backslash-escaped so that a message's `*`, `_`, `<module>` or `$` cannot turn into formatting,
# HTML or math; `|` would end the table cell.
_MARKDOWN_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|~&$"})

_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity)}
_FINDINGS_TABLE = [
    "### Findings",
    "",
    "| Config | Key | Line | Severity | Check | Message | Set at |",
    "|---|---|---:|---|---|---|---|",
]

Pair = tuple[Finding, ConfigResult]
# experiment, line, severity, check, key path, message
SourceKey = tuple[str, int, str, str, str, str]


def render_text(
    result: ValidationResult, *, verbose: bool = True, listed: int = 5, findings_only: bool = False
) -> str:
    """The readable report: the summary, each finding once with the configs it is found in,
    then every config with its status (``verbose``, as ``validation_report.txt`` has it).

    A finding that 200 configs share (a control's mistake) is one entry naming them; without
    ``verbose`` it names the first ``listed`` and counts the rest, and the configs without a
    finding are counted, not listed, so that a CI log shows what needs fixing.

    Args:
        result: The validation to report.
        verbose: List every config, and every config of each finding.
        listed: Without ``verbose``, how many configs each finding names.
        findings_only: Only the findings (``validate -q``): no heading, summary or configs.

    Returns:
        The report, ending in a newline; the same for the same result.
    """
    counts = ", ".join(f"{result.count(s)} {_STATUS_WORDS.get(s, s)}" for s in Status)
    summary = f"{plural(len(result.configs), 'config')}: {counts}"
    lines = [TITLE, f"versions: {_versions(result)}", summary]
    findings: list[str] = []
    for (finding, source), hits in _grouped(result).items():
        key = f" {finding.keypath}" if finding.keypath else ""
        # A traceback's later lines stay indented under the finding they belong to.
        message = "\n    ".join(finding.message.splitlines())
        findings += ["", f"{finding.severity}{key} [{finding.check}]: {message}"]
        if source:
            findings.append(f"    set at {source}")
        shown = hits if verbose else hits[:listed]
        where = ", ".join(_at(config, line) for config, line in shown)
        more = len(hits) - len(shown)
        if more:
            where += f" and {more} more (-v lists them)"
        configs = plural(len(hits), "config")
        findings.append(f"    in {configs}: {where}" if len(hits) > 1 else f"    in {where}")
    if findings_only:
        return "\n".join(findings[1:]) + "\n" if findings else ""
    lines += findings
    if verbose:
        lines += ["", "configs:"]
        for config in result.configs:
            executed = f"; {config.execution}" if config.execution else ""
            lines.append(
                f"  {display_path(config.config)}: {config.status} "
                f"(tune validate: {config.tune_validate}{executed})"
            )
    else:
        unlisted = sum(not config.findings for config in result.configs)
        if unlisted:
            lines += ["", f"{plural(unlisted, 'config')} without findings (-v lists every config)"]
    return "\n".join(lines) + "\n"


def _grouped(result: ValidationResult) -> dict[tuple[Finding, str], list[tuple[Path, int | None]]]:
    """Each distinct finding (its config and line aside) → the configs and lines it is found
    at; errors first, then in the order met (:func:`_most_useful_first` gives them so)."""
    groups: dict[tuple[Finding, str], list[tuple[Path, int | None]]] = {}
    for finding, config in _most_useful_first(result):
        same = replace(finding, config=Path(), line=None, experiment=None, experiment_line=None)
        hit = (config.config, finding.line)
        groups.setdefault((same, _source(finding, config)), []).append(hit)
    return groups


def _at(config: Path, line: int | None) -> str:
    """``exp/configs/run_000.yaml:12``: a place a terminal or an editor opens."""
    return display_path(config) + (f":{line}" if line is not None else "")


def render_markdown(
    result: ValidationResult, max_bytes: int = 1_000_000, *, report: str = REPORT_FILE
) -> str:
    """The report as Markdown for a GitHub Actions job summary.

    GitHub refuses a step summary over 1 MiB, so when the report would exceed ``max_bytes`` whole
    table rows are cut from the end, keeping the heading and summary, and a note says how many.

    Args:
        result: The validation to report.
        max_bytes: The most UTF-8 bytes the Markdown may take.
        report: The full report the cut note points to.

    Returns:
        Markdown of at most ``max_bytes`` bytes.

    Raises:
        ValueError: ``max_bytes`` leaves no room for the heading, summary and cut note.
    """
    head = [f"## {TITLE}", "", _cell(_versions(result)), "", "| Configs | Count |", "|---|---:|"]
    head += [f"| {_MARKS[s]} {_STATUS_WORDS.get(s, s)} | {result.count(s)} |" for s in Status]
    head += [f"| **total** | **{len(result.configs)}** |", ""]
    pairs = [(finding, config) for config in result.configs for finding in config.findings]
    # Errors first, in config order: when rows must be cut, unverified ones go before errors do.
    pairs.sort(key=lambda pair: _SEVERITY_RANK.get(pair[0].severity, len(Severity)))
    findings = [_finding_row(finding, config) for finding, config in pairs]
    configs = [
        _row(
            _code(display_path(c.config)), f"{_MARKS[c.status]} {c.status}", _cell(c.tune_validate)
        )
        for c in result.configs
    ]
    head += [] if findings else ["No findings.", ""]
    # Findings come before the list of configs: when rows must be cut, what needs fixing stays.
    sections = {
        "findings": (_FINDINGS_TABLE, findings),
        "configs": (
            ["### Configs", "", "| Config | Status | tune validate |", "|---|---|---|"],
            configs,
        ),
    }
    full = head + [
        line for table, rows in sections.values() if rows for line in [*table, *rows, ""]
    ]
    if _size(full) <= max_bytes:
        return "\n".join(full) + "\n"
    # The note for everything cut is the longest one: reserving it means any real note fits.
    reserve = _size([_cut_note({name: len(rows) for name, (_, rows) in sections.items()}, report)])
    if _size(head) + reserve > max_bytes:
        raise ValueError(f"{max_bytes} bytes leave no room for the report's summary")
    kept, cut = list(head), Counter[str]()
    for name, (table, rows) in sections.items():
        for index, row in enumerate(rows):
            block = [*table, row] if index == 0 else [row]
            if cut or _size([*kept, *block, ""]) + reserve > max_bytes:
                cut[name] += 1
            else:
                kept += block
        if kept[-1]:  # a blank line ends a table
            kept.append("")
    return "\n".join([*kept, _cut_note(cut, report)]) + "\n"


def render_json(result: ValidationResult) -> str:
    """The report as a stable JSON document (sorted keys, paths as in the text report).

    Args:
        result: The validation to report.

    Returns:
        JSON with ``versions``, ``counts`` (configs per status and ``total``) and ``configs``:
        each with ``path``, ``status``, ``tune_validate``, ``execution`` (how running the recipe
        reached its verdict), ``experiment`` and ``findings`` (every
        field of a finding), ending in a newline; ASCII, with no workflow command
        (:func:`~torchtune_config_writer.json_output.json_text`).
    """
    document = {
        "versions": dict(result.versions),
        "counts": {**{str(s): result.count(s) for s in Status}, "total": len(result.configs)},
        "configs": [
            {
                "path": relative_path(config.config),
                "status": config.status,
                "tune_validate": config.tune_validate,
                "execution": config.execution,
                "experiment": _json_value(config.experiment),
                "findings": [
                    {f.name: _json_value(getattr(finding, f.name)) for f in fields(finding)}
                    for finding in config.findings
                ],
            }
            for config in result.configs
        ],
    }
    return json_text(document, sort_keys=True)


def render_annotations(
    result: ValidationResult, max_per_kind: int = 10, *, report: str = REPORT_FILE
) -> str:
    """GitHub workflow commands that annotate the configs (and experiments) in a pull request.

    Errors are ``::error``; warnings and unverified findings are ``::warning``. A finding whose
    value was set in the experiment is annotated at that line too, once however many configs
    repeat it. GitHub shows only 10 of each kind per step, so the most useful come first and at
    most ``max_per_kind`` of each are given, then one ``::notice`` counts what was left out.

    Args:
        result: The validation to report.
        max_per_kind: The most ``::error`` and the most ``::warning`` lines.
        report: The full report the notice points to.

    Returns:
        One command a line, each ending in a newline; empty when nothing was found.
    """
    pairs = _most_useful_first(result)
    repeats = Counter(key for f, c in pairs if (key := _source_key(f, c)))
    shown, left = Counter[str](), Counter[str]()
    done: set[SourceKey] = set()
    lines: list[str] = []
    for finding, config in pairs:
        kind = "error" if finding.severity == Severity.ERROR else "warning"
        title = f"{finding.keypath or 'whole file'} [{finding.check}]"
        if finding.severity not in (Severity.ERROR, Severity.WARNING):
            title = f"{finding.severity}: {title}"
        key = _source_key(finding, config)
        # The experiment's line first: that is where the reviewer changes the value.
        if key and key not in done and shown[kind] < max_per_kind:
            done.add(key)
            shown[kind] += 1
            others = repeats[key] - 1
            where = display_path(config.config)
            where += f" and {plural(others, 'more config')}" if others else ""
            message = f"{finding.message}\nIn {where}."
            lines.append(_command(kind, key[0], key[1], f"{title}, set here", message))
        if shown[kind] < max_per_kind:
            shown[kind] += 1
            source = _source(finding, config)
            message = finding.message + (f"\nSet at {source}." if source else "")
            lines.append(_command(kind, relative_path(config.config), finding.line, title, message))
        else:
            left[finding.severity] += 1
    if left:
        counts = [plural(n, f"more {_NOUNS.get(s, s)}") for s, n in left.items()]
        told = ", ".join(counts[:-1]) + " and " + counts[-1] if len(counts) > 1 else counts[0]
        verb = "is" if left.total() == 1 else "are"
        lines.append(f"::notice::{_escape_data(f'{told} {verb} in the report ({report}).')}")
    return "".join(line + "\n" for line in lines)


def _versions(result: ValidationResult) -> str:
    names = ["torchtune", "torch", *sorted(set(result.versions) - {"torchtune", "torch"})]
    return ", ".join(f"{name} {result.versions.get(name, 'unknown')}" for name in names)


def _source(finding: Finding, config: ConfigResult) -> str:
    """Where in the experiment the value was set (``exp/experiment.yaml:7``), or ``""``."""
    if finding.experiment_line is None:
        return ""
    experiment = finding.experiment or config.experiment
    if experiment is None:
        return f"line {finding.experiment_line} of the experiment"
    return f"{display_path(experiment)}:{finding.experiment_line}"


def _source_key(finding: Finding, config: ConfigResult) -> SourceKey | None:
    """What makes findings of several configs one mistake in the experiment, if set there."""
    experiment = finding.experiment or config.experiment
    if finding.experiment_line is None or experiment is None:
        return None
    where = (relative_path(experiment), finding.experiment_line)  # a `file=` property
    return (*where, finding.severity, finding.check, finding.keypath, finding.message)


def _most_useful_first(result: ValidationResult) -> list[Pair]:
    """By severity, then one finding of each config in turn: many configs over many of one."""
    ranked = []
    for index, config in enumerate(result.configs):
        before = Counter[str]()  # findings of the same severity earlier in this config
        for finding in config.findings:
            severity = _SEVERITY_RANK.get(finding.severity, len(Severity))
            ranked.append(((severity, before[finding.severity], index), (finding, config)))
            before[finding.severity] += 1
    return [pair for _, pair in sorted(ranked, key=lambda item: item[0])]


def _finding_row(finding: Finding, config: ConfigResult) -> str:
    return _row(
        _code(display_path(config.config)),
        _code(finding.keypath),
        str(finding.line) if finding.line is not None else "",
        f"{_MARKS.get(finding.severity, '')} {finding.severity}".strip(),
        _cell(finding.check),
        _cell(finding.message),
        _code(_source(finding, config)),
    )


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(text: str) -> str:
    return "<br>".join(text.translate(_MARKDOWN_SPECIAL).splitlines())


def _cut_note(cut: Counter[str] | dict[str, int], report: str) -> str:
    told = " and ".join(plural(cut[name], f"more {name[:-1]}") for name in cut if cut[name])
    verb = "is" if sum(cut.values()) == 1 else "are"
    return f"_Report cut: {told} {verb} in the text report ({_code(report)})._"


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def _json_value(value: object) -> object:
    return relative_path(value) if isinstance(value, Path) else value


def _command(kind: str, file: str, line: int | None, title: str, message: str) -> str:
    properties = [("file", file), ("line", "" if line is None else str(line)), ("title", title)]
    escaped = [f"{name}={_escape_data(v, in_property=True)}" for name, v in properties if v]
    return f"::{kind} {','.join(escaped)}::{_escape_data(message)}"


def _escape_data(text: str, *, in_property: bool = False) -> str:
    """GitHub's escaping for workflow commands (toolkit's ``command.ts``); ``%`` goes first.
    Other control characters, which no escape of GitHub's covers, are written as ``\\xNN``."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    text = printable(text)
    return text.replace(":", "%3A").replace(",", "%2C") if in_property else text
