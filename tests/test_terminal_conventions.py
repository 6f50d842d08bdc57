"""The terminal conventions of ruff, pre-commit and tune: colour on a terminal only (NO_COLOR,
FORCE_COLOR, --color), -q and -v, a did-you-mean for a typo, examples in each command's help, and
shell completion; with snapshots of what a terminal and a CI log show."""

from __future__ import annotations

import io
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer.cli import _COMMANDS, build_parser
from torchtune_config_writer.terminal import EscapingStream, coloured, wants_colour

from .conftest import EXAMPLES, CliResult, experiment_text, record_base
from .terminal_run import assert_snapshot, in_log, in_terminal

ESC = "\x1b["


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("error: x.yaml:3:1: bad", "\x1b[1;31merror:\x1b[0m x.yaml:3:1: bad"),
        ("warning: lr is text", "\x1b[1;33mwarning:\x1b[0m lr is text"),
        ("note: skipped", "\x1b[36mnote:\x1b[0m skipped"),
        ("✓ 3 experiments up to date", "\x1b[1;32m✓\x1b[0m 3 experiments up to date"),
        ("+  lora_rank: 16", "\x1b[32m+  lora_rank: 16\x1b[0m"),
        ("-  lora_rank: 8", "\x1b[31m-  lora_rank: 8\x1b[0m"),
        ("@@ -1,2 +1,2 @@", "\x1b[36m@@ -1,2 +1,2 @@\x1b[0m"),
        ("--- a.yaml (on disk)", "\x1b[1m--- a.yaml (on disk)\x1b[0m"),
        ("drift: exp/configs/ differs", "\x1b[1;33mdrift:\x1b[0m exp/configs/ differs"),
        ("  error model.x [type]: bad", "  \x1b[1;31merror\x1b[0m model.x [type]: bad"),
        # Not labels: a word that only starts like one, a diff's unchanged line, plain text.
        ("errors_seen: 3", "errors_seen: 3"),
        (" error_rate: 0.1", " error_rate: 0.1"),
        ("llama3_2/1B_lora_single_device", "llama3_2/1B_lora_single_device"),
    ],
)
def test_a_line_is_coloured_by_its_label_or_diff_sign(line: str, expected: str) -> None:
    assert coloured(line) == expected


def test_colour_is_added_after_escaping_so_a_name_cannot_colour_or_clear_the_screen() -> None:
    raw = io.StringIO()
    stream = EscapingStream(raw, colour=True)  # type: ignore[arg-type]
    stream.write("error: \x1b[2J\x1b[32mname\x1b[0m.yaml is bad\n+ \x1b]52;c;x\x07\n")
    assert raw.getvalue() == (
        "\x1b[1;31merror:\x1b[0m \\x1b[2J\\x1b[32mname\\x1b[0m.yaml is bad\n"
        "\x1b[32m+ \\x1b]52;c;x\\x07\x1b[0m\n"
    )


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "env", "choice", "wanted"),
    [
        (True, {}, "auto", True),
        (False, {}, "auto", False),  # a pipe or a file: no codes in it
        (True, {"NO_COLOR": "1"}, "auto", False),
        (True, {"NO_COLOR": ""}, "auto", True),  # no-color.org: set and not empty
        (False, {"FORCE_COLOR": "1"}, "auto", True),
        (True, {"TERM": "dumb"}, "auto", False),
        (True, {"CI": "true"}, "auto", False),  # act's pseudo-terminal is a log
        (False, {}, "always", True),
        (True, {"FORCE_COLOR": "1"}, "never", False),
    ],
)
def test_colour_follows_the_terminal_no_color_force_color_and_the_option(
    monkeypatch: pytest.MonkeyPatch, tty: bool, env: dict[str, str], choice: str, wanted: bool
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert wants_colour(_Stream(tty), choice) is wanted  # type: ignore[arg-type]


@pytest.fixture
def drifted(tmp_path: Path) -> Path:
    """A copy of the rank study whose experiment gained a rank: its configs/ drifted."""
    shutil.copytree(EXAMPLES / "lora_rank_study", tmp_path / "lora_rank_study")
    experiment = tmp_path / "lora_rank_study" / "experiment.yaml"
    text = experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16, 32, 64, 128]")
    experiment.write_text(text)
    return tmp_path


@pytest.mark.slow
def test_a_terminal_gets_colour_and_neither_a_pipe_nor_no_color_does(drifted: Path) -> None:
    code, shown = in_terminal("check", "lora_rank_study", cwd=drifted)
    assert code == 1 and f"{ESC}32m+- id: run_004" in shown and f"{ESC}1;33mdrift:" in shown
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        code, shown = in_terminal("check", "lora_rank_study", cwd=drifted, **env)
        assert code == 1 and "+- id: run_004" in shown and ESC not in shown
    code, shown = in_terminal("check", "lora_rank_study", "--color", "never", cwd=drifted)
    assert ESC not in shown
    code, logged = in_log("check", "lora_rank_study", cwd=drifted)
    assert code == 1 and "+- id: run_004" in logged and ESC not in logged
    code, logged = in_log("check", "lora_rank_study", "--color=always", cwd=drifted)
    assert f"{ESC}32m+- id: run_004" in logged
    code, shown = in_terminal("generate", "no_such_study", cwd=drifted)
    assert code == 2 and shown.startswith(f"{ESC}1;31merror:{ESC}0m ")


@pytest.mark.slow
def test_snapshots_of_check_and_generate_on_a_terminal_and_in_a_log(drifted: Path) -> None:
    code, shown = in_terminal("check", "lora_rank_study", cwd=drifted)
    assert code == 1
    assert_snapshot("check_terminal", shown)
    code, logged = in_log("check", "lora_rank_study", cwd=drifted)
    assert code == 1
    assert_snapshot("check_log", logged)
    code, shown = in_terminal("generate", "lora_rank_study", "-v", cwd=drifted)
    assert code == 0
    assert_snapshot("generate_terminal", shown)
    code, logged = in_log("generate", "lora_rank_study", cwd=drifted)
    assert code == 0
    assert_snapshot("generate_log", logged)


def test_quiet_prints_only_problems_and_verbose_names_every_file(
    drifted: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(drifted)
    loud = cli("generate", "lora_rank_study", "-v")
    assert loud.code == 0
    assert "  added: lora_rank_study/configs/run_004.yaml\n" in loud.out
    assert "  updated: lora_rank_study/configs/run_mapping.yaml\n" in loud.out
    assert cli("generate", "lora_rank_study", "-q") == CliResult(0, "", "")
    assert cli("check", "lora_rank_study", "-q") == CliResult(0, "", "")
    checked = cli("check", "lora_rank_study", "--verbose")
    assert checked.out == "up to date: lora_rank_study/configs/\n✓ 1 experiment up to date\n"
    both = cli("check", "-q", "-v")
    assert both.code == 2 and "not allowed with argument" in both.err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["genrate", "x"], "error: no command 'genrate': did you mean generate?"),
        (["chek"], "error: no command 'chek': did you mean check?"),
        (["validat", "--affected"], "error: no command 'validat': did you mean validate?"),
        (["recipe"], "error: no command 'recipe': did you mean recipes?"),
        (["frobnicate"], "error: no command 'frobnicate' (one of generate, check, show,"),
        (["check", "--fox"], "did you mean --fix? (see torchtune-config-writer check --help)"),
        (["generate", "x", "--max-rusn", "3"], "did you mean --max-runs?"),
        (["validate", "--no-exceute"], "did you mean --no-execute?"),
        (["generate", "--bogus", "x"], "unrecognized arguments: --bogus (see "),
        (["show", "x", "--formt=json"], "--formt=json: did you mean --format?"),
    ],
)
def test_a_mistyped_command_or_option_gets_a_guess_and_that_commands_help(
    cli: Callable[..., CliResult], argv: list[str], said: str
) -> None:
    result = cli(*argv)
    assert result.code == 2 and result.out == ""
    assert said in result.err and result.err.count("\n") == 1, result.err
    if argv[0] in _COMMANDS:
        assert f"(see torchtune-config-writer {argv[0]} --help)" in result.err


@pytest.mark.parametrize("name", list(_COMMANDS))
def test_each_commands_help_ends_with_examples_that_parse(
    name: str, cli: Callable[..., CliResult]
) -> None:
    shown = cli(name, "--help").out
    assert "\nexamples:\n  torchtune-config-writer " + name in shown
    examples = [line.split("#")[0] for line in shown.split("\nexamples:\n")[1].splitlines() if line]
    assert len(examples) >= 1
    for example in examples:
        words = shlex.split(example.split(">")[0])  # the shell's redirection is not an argument
        assert words[:2] == ["torchtune-config-writer", name]
        parsed = build_parser(name).parse_args(words[1:])  # exits on a wrong example
        assert parsed.command == name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_commands_options_and_choices(cli: Callable[..., CliResult]) -> None:
    script = cli("completion", "bash").out
    assert script.startswith("#") and "_shtab_torchtune_config_writer" in script

    def complete(*words: str) -> set[str]:
        line = " ".join(shlex.quote(w) for w in ("torchtune-config-writer", *words))
        program = (
            f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; "
            f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}; "
            "_shtab_torchtune_config_writer; printf '%s\\n' \"${COMPREPLY[@]}\""
        )
        done = subprocess.run(["bash", "-c", program], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    assert complete("gen") == {"generate"}
    assert {"check", "completion"} <= complete("c")
    assert {"--fix", "--format", "--deletions"} <= complete("check", "--f") | {"--deletions"}
    assert complete("check", "--format", "") == {"text", "json"}
    assert complete("validate", "--color", "n") == {"never"}
    for shell in ("zsh", "tcsh"):
        assert "generate" in cli("completion", shell).out


def test_a_wrong_shell_for_completion_is_one_error_line(cli: Callable[..., CliResult]) -> None:
    result = cli("completion", "powershell")
    assert result.code == 2 and result.err.startswith("error: argument SHELL: invalid choice")


@pytest.mark.needs_torch
def test_snapshots_of_validate_on_a_terminal_and_in_a_log_with_grouped_findings(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    # One control that no recipe reads, shared by three runs: one finding naming three configs.
    path = write_experiment(
        experiment_text(variables="lora_rank: [8, 16, 32]", controls="+epoch: 3")
    )
    record_base(path)
    assert cli("generate", path).code == 0
    folder = path.parent.parent
    args = ("validate", "exp", "--no-execute")
    code, shown = in_terminal(*args, cwd=folder)
    assert code == 0
    assert shown.count("unread") == 1 and "in 3 configs: exp/configs/run_000.yaml:" in shown
    assert_snapshot("validate_terminal", _versions_as_words(shown))
    code, logged = in_log(*args, cwd=folder)
    assert code == 0 and ESC not in logged and "\r" not in logged
    assert logged.startswith(
        "validate: importing torch and torchtune\nvalidate: checking 1/3\n"
        "validate: checking 2/3\nvalidate: checking 3/3\n"
    )
    assert_snapshot("validate_log", _versions_as_words(logged))
    code, verbose = in_log(*args, "-v", cwd=folder)
    assert "\nconfigs:\n  exp/configs/run_000.yaml: warning (tune validate: passed" in verbose
    code, quiet = in_log(*args, "-q", cwd=folder)
    assert quiet.startswith("warning epoch [unread-key]: ") and "validate:" not in quiet


def _versions_as_words(text: str) -> str:
    """The report's versions line as words: the snapshot holds on any torch of the pins."""
    return "\n".join(
        "versions: (the installed ones)" if line.startswith("versions: ") else line
        for line in text.split("\n")
    )
