"""What validation finds: one result object that every report format is made from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class _Word(str, Enum):
    """Members that are their word wherever text or JSON is made of them (``StrEnum`` from
    Python 3.11 on, written out for 3.10)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Severity(_Word):
    """How bad a finding is, worst first. ``UNVERIFIED``: could not be checked here (an optional
    package such as bitsandbytes is not installed, an environment variable is not set), which
    is not a mistake."""

    ERROR = "error"
    WARNING = "warning"
    UNVERIFIED = "unverified"


class Status(_Word):
    """A config's verdict, from the worst of its findings; in the order reports list them."""

    VALID = "valid"
    WARNING = "warning"
    UNVERIFIED = "unverified"
    INVALID = "invalid"


class TuneVerdict(_Word):
    """torchtune's own verdict on a config: ``FAILED`` is its ConfigError, ``CRASHED`` a
    traceback ``tune validate`` would end in."""

    PASSED = "passed"
    FAILED = "failed"
    CRASHED = "crashed"


@dataclass(frozen=True)
class Finding:
    """One problem in one generated config.

    Attributes:
        config: The config file.
        keypath: The dotted key path (``optimizer.lr``); empty for the whole file.
        line: The line of that key in the config file, where known.
        severity: ``error``, ``warning`` or ``unverified``.
        check: Which check found it: ``tune-validate``, ``import``, ``interpolation``,
            ``signature``, ``type``, ``unread-key``, ``execution`` (running the recipe),
            ``output-location``, ``experiments`` or ``preflight``.
        message: What is wrong and what to do.
        experiment: The experiment file the config was generated from, where known.
        experiment_line: The line there that set the value, where it was set there.
    """

    config: Path
    keypath: str
    line: int | None
    severity: Severity
    check: str
    message: str
    experiment: Path | None = None
    experiment_line: int | None = None


@dataclass(frozen=True)
class ConfigResult:
    """The validation of one config.

    Attributes:
        config: The config file.
        tune_validate: torchtune's own verdict: ``passed``, ``failed`` (its ConfigError) or
            ``crashed`` (``tune validate`` would end in a traceback).
        findings: Everything found, in key order.
        experiment: The experiment file it was generated from, where known.
        execution: How running its recipe reached a verdict (``values: executed; shape: real
            size executed once for 16 configs``), or why it did not run.
    """

    config: Path
    tune_validate: TuneVerdict
    findings: tuple[Finding, ...] = ()
    experiment: Path | None = None
    execution: str = ""

    @property
    def status(self) -> Status:
        """``invalid`` with any error, else ``unverified``, else ``warning``, else ``valid``."""
        severities = {finding.severity for finding in self.findings}
        if Severity.ERROR in severities:
            return Status.INVALID
        if Severity.UNVERIFIED in severities:
            return Status.UNVERIFIED
        return Status.WARNING if Severity.WARNING in severities else Status.VALID


@dataclass
class ValidationResult:
    """The validation of every config of a run of ``validate``.

    Attributes:
        configs: One result per config, in the order validated.
        versions: Versions of the packages that validated, e.g. ``{"torchtune": "0.6.1"}``.
    """

    configs: list[ConfigResult] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        """Every finding of every config, in order."""
        return [finding for result in self.configs for finding in result.findings]

    def count(self, status: Status) -> int:
        """How many configs have ``status``: valid, warning, unverified or invalid."""
        return sum(1 for result in self.configs if result.status == status)

    def failed(self, *, warnings_fail: bool = False, unverified_fails: bool = False) -> bool:
        """Whether the validation fails: any error, and optionally any warning or unverified."""
        failing = {Severity.ERROR}
        if warnings_fail:
            failing.add(Severity.WARNING)
        if unverified_fails:
            failing.add(Severity.UNVERIFIED)
        return any(finding.severity in failing for finding in self.findings)
