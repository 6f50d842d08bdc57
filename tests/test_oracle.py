"""The runtime oracle: `validate`'s verdict on a config is what the real `tune run` did with it.

Every case of ``tests/oracle/corpus.py`` is written as an experiment over a tiny base (built here,
nothing downloaded), generated, trained for two steps with the real ``tune run`` and validated.
A config that trains must be generated and get no error; a config that ``tune run`` refuses must
be refused by ``generate`` or get an error at the key path that is wrong. A separate test per
case checks the corpus itself against ``tune run``, so that a wrong expectation is told apart
from a check that is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oracle.assets import FULL, build_assets
from tests.oracle.corpus import CORPUS, Case, Judged, OracleRun, checkpoints, judge_corpus
from tests.oracle.runner import TuneCase

pytestmark = pytest.mark.needs_torch

GOOD = [case for case in CORPUS if case.trains]
BAD = [case for case in CORPUS if not case.trains]
TIMEOUT_CASE = "runner_timeout"
TIMEOUT_SECONDS = 2.0


def _names(case: Case) -> str:
    return case.name


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> OracleRun:
    """The assets built once and the whole corpus judged: one runner, one ``validate``."""
    root = tmp_path_factory.mktemp("oracle")
    assets = build_assets(root / "tiny")
    return judge_corpus(CORPUS, root / "cases", assets, extra=[_sleeper(root / "sleeper")])


def _sleeper(folder: Path) -> TuneCase:
    """A custom recipe (``tune run`` imports it from its folder) that never ends."""
    folder.mkdir(parents=True)
    (folder / "sleeper.py").write_text("import time\n\ntime.sleep(600)\n", "utf-8")
    args = ("sleeper", "--config", "unused.yaml")
    return TuneCase(TIMEOUT_CASE, args, str(folder), timeout=TIMEOUT_SECONDS)


def _describe(judged: Judged) -> str:
    """Everything each tool said, for a failure message."""
    lines = [f"generate: {judged.refusal or 'generated'}"]
    for target, outcome, result in zip(
        judged.targets, judged.outcomes, judged.results, strict=True
    ):
        lines.append(
            f"{target.run_id}: tune run exit {outcome.exit_code} {outcome.reason}; "
            f"validate {result.status}"
        )
        lines += [f"  {f.severity} {f.keypath} [{f.check}]: {f.message}" for f in result.findings]
    return "\n".join(lines)


@pytest.mark.parametrize("case", CORPUS, ids=_names)
def test_tune_run_does_what_the_corpus_says(oracle: OracleRun, case: Case) -> None:
    judged = oracle.judged[case.name]
    assert judged.tune_run_as_expected, _describe(judged)


@pytest.mark.parametrize("case", GOOD, ids=_names)
def test_a_config_that_trains_is_generated_and_has_no_error(oracle: OracleRun, case: Case) -> None:
    judged = oracle.judged[case.name]
    assert judged.trained, _describe(judged)
    assert judged.refusal is None, _describe(judged)
    assert not judged.errors, _describe(judged)


@pytest.mark.parametrize("case", BAD, ids=_names)
def test_a_config_tune_run_refuses_is_refused_or_flagged_at_its_key(
    oracle: OracleRun, case: Case
) -> None:
    judged = oracle.judged[case.name]
    assert judged.failed, _describe(judged)
    assert judged.refused_for_it or judged.flagged_it, (
        f"expected generate to refuse it or validate to flag {' or '.join(case.keys)}\n"
        + _describe(judged)
    )


@pytest.mark.parametrize("case", [case for case in GOOD if case.saves_checkpoint], ids=_names)
def test_a_run_that_trains_saves_its_checkpoint_in_its_output_dir(
    oracle: OracleRun, case: Case
) -> None:
    judged = oracle.judged[case.name]
    for target in judged.targets:
        names = [path.name for path in checkpoints(target.config)]
        assert "model-00001-of-00001.bin" in names, (target.config, names)
        if case.base != FULL:
            assert "adapter_model.pt" in names, (target.config, names)


@pytest.mark.parametrize("case", [case for case in GOOD if case.warns], ids=_names)
def test_a_run_that_trains_nothing_is_a_warning_at_its_key(oracle: OracleRun, case: Case) -> None:
    judged = oracle.judged[case.name]
    for result in judged.results:
        warnings = [f.keypath for f in result.findings if f.severity == "warning"]
        assert case.warns in warnings, _describe(judged)


@pytest.mark.parametrize("case", ["lora_sweep_good", "shared_checkpointer_dir_good"])
def test_runs_of_a_sweep_save_to_folders_of_their_own(oracle: OracleRun, case: str) -> None:
    targets = oracle.judged[case].targets
    folders = {checkpoints(target.config)[0].parent for target in targets}
    assert len(folders) == len(targets) == 2


def test_the_runner_kills_a_child_past_its_timeout(oracle: OracleRun) -> None:
    outcome = oracle.extra[TIMEOUT_CASE]
    assert outcome.exit_code == -9
    assert outcome.reason == f"timed out after {TIMEOUT_SECONDS:g} s"
    assert outcome.seconds < TIMEOUT_SECONDS + 5


def test_dataset_arguments_meant_for_load_dataset_get_no_finding(oracle: OracleRun) -> None:
    judged = oracle.judged["good_passthrough"]
    assert judged.trained, _describe(judged)
    assert not [f for result in judged.results for f in result.findings], _describe(judged)
