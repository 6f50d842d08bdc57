"""`diff --base REF` reads a pull request's input on both sides: the working tree and the base
commit's objects obey the rules `check` obeys (no symlink followed out, plain run ids, the
guarded YAML reader and its limits), one bad folder does not hide the others, any ref git
accepts works, and the Markdown table renders every repository text as text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES, CliResult
from .test_diff import STUDY, edit, folder, git, repo, review

__all__ = ["repo"]  # the fixture, shared with test_diff

SECRET = "SECRET-FROM-OUTSIDE"
CONFIGS = Path(STUDY) / "configs"
RUN = CONFIGS / "run_000.yaml"
MAPPING = CONFIGS / "run_mapping.yaml"


def outside(repo: Path) -> Path:
    """A folder beside the repository, holding YAML that must never reach the table."""
    path = repo.parent / "outside"
    path.mkdir(exist_ok=True)
    return path


def leaking_copy(repo: Path, relative: Path) -> Path:
    """A copy of a generated file (or folder) outside the repository, with a secret in it."""
    target = outside(repo) / relative.name
    source = repo / relative
    if source.is_dir():
        shutil.copytree(source, target)
        run = target / "run_000.yaml"
        run.write_text(run.read_text() + f"leaked: {SECRET}\n")
    elif source.name == "run_mapping.yaml":
        extra = f"- id: run_009\n  params: {{lora_rank: {SECRET}}}\n"
        target.write_text(source.read_text() + extra)
    else:
        target.write_text(source.read_text() + f"leaked: {SECRET}\n")
    return target


def replace_with_symlink(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.symlink_to(target)


def every_format(cli: Callable[..., CliResult], base: str = "main") -> dict[str, Any]:
    """The JSON review, after checking that every format exits 0 and leaks nothing."""
    for form in ("text", "markdown", "json"):
        result = cli("diff", "--base", base, "--format", form)
        assert result.code == 0, result.err
        assert SECRET not in result.out
    return review(cli, base)


def unreadable(data: dict[str, Any], name: str = STUDY) -> str:
    found = folder(data, name)
    assert found["status"] == "unreadable", found
    error: str = found["error"]
    return error


# 1. Nothing is read through a symlink or a run id that leads elsewhere, on either side.


@pytest.mark.parametrize("link", [RUN, MAPPING, CONFIGS], ids=["run file", "mapping", "folder"])
def test_a_working_tree_symlink_out_of_the_repository_is_not_followed(
    repo: Path, cli: Callable[..., CliResult], link: Path
) -> None:
    replace_with_symlink(repo / link, leaking_copy(repo, link))
    assert "symlink" in unreadable(every_format(cli))


@pytest.mark.parametrize("link", [RUN, MAPPING], ids=["run file", "mapping"])
def test_a_committed_symlink_is_refused_not_read(
    repo: Path, cli: Callable[..., CliResult], link: Path
) -> None:
    kept = (repo / link).read_bytes()
    replace_with_symlink(repo / link, leaking_copy(repo, link))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a symlink")
    (repo / link).unlink()
    (repo / link).write_bytes(kept)
    error = unreadable(every_format(cli, "HEAD"))
    assert error.startswith(f"HEAD:{link.as_posix()}: is a symlink")


HOSTILE_IDS = ["../../../outside/secret", "{outside}/secret", "sub/run_000", "run_1"]


def hostile_mapping(repo: Path, ident: str) -> None:
    """Give run_000 (its values unchanged) the id ``ident``, and a secret under that name."""
    ident = ident.format(outside=outside(repo))
    sub = repo / CONFIGS / "sub"
    sub.mkdir(exist_ok=True)
    for where in (outside(repo) / "secret.yaml", sub / "run_000.yaml"):
        where.write_text((repo / RUN).read_text() + f"leaked: {SECRET}\n")
    text = (repo / MAPPING).read_text()
    (repo / MAPPING).write_text(text.replace("- id: run_000\n", f"- id: '{ident}'\n"))


@pytest.mark.parametrize("ident", HOSTILE_IDS)
def test_a_run_id_that_is_no_plain_name_is_refused_in_the_working_tree(
    repo: Path, cli: Callable[..., CliResult], ident: str
) -> None:
    hostile_mapping(repo, ident)
    error = unreadable(every_format(cli))
    assert f"{MAPPING.as_posix()}:7:3: run_mapping.yaml: this entry's id is no run id" in error


@pytest.mark.parametrize("ident", HOSTILE_IDS[:2])
def test_a_run_id_that_is_no_plain_name_is_refused_in_the_base_commit(
    repo: Path, cli: Callable[..., CliResult], ident: str
) -> None:
    kept = (repo / MAPPING).read_bytes()
    hostile_mapping(repo, ident)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hostile ids")
    (repo / MAPPING).write_bytes(kept)
    error = unreadable(every_format(cli, "HEAD"))
    assert error.startswith(f"HEAD:{MAPPING.as_posix()}:7:3: ")


# 2. The base commit's files go through the same guarded reader and limits as the working tree's.

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def deep_block(levels: int) -> str:
    return "".join(" " * depth + "k:\n" for depth in range(levels)) + " " * levels + "k: 1\n"


BAD_FILES = {
    "alias bomb": (BOMB, "refused as an alias bomb"),
    "150 levels of blocks": (deep_block(150), "nested more than 100 levels deep: flatten it"),
    "999 levels of blocks": (deep_block(999), "exceeded maximum nesting depth"),
    "999 levels of brackets": ("k: " + "[" * 999 + "]" * 999 + "\n", "levels deep: flatten it"),
    "a self-referencing alias": ("k: &k [*k]\n", "an alias refers to the mapping or list"),
    "python tag": ("k: !!python/object/apply:os.system [true]\n", "is not allowed"),
    "bad YAML": ("k: [unclosed\n", "is not closed"),
}


def bad_base_run(repo: Path, content: bytes) -> None:
    """Commit ``content`` as run_000.yaml, then restore the generated file in the work tree."""
    kept = (repo / RUN).read_bytes()
    (repo / RUN).write_bytes(content)
    git(repo, "commit", "-qam", "a bad run file")
    (repo / RUN).write_bytes(kept)


@pytest.mark.parametrize("case", list(BAD_FILES))
@pytest.mark.parametrize("side", ["base commit", "working tree"])
def test_a_hostile_run_file_is_refused_on_either_side_with_the_checks_limits(
    repo: Path, cli: Callable[..., CliResult], case: str, side: str
) -> None:
    content, said = BAD_FILES[case]
    if side == "base commit":
        bad_base_run(repo, content.encode())
    else:
        (repo / RUN).write_text(content)
    error = unreadable(every_format(cli, "HEAD"))
    named = f"HEAD:{RUN.as_posix()}" if side == "base commit" else RUN.as_posix()
    assert error.startswith(named) and said in error


@pytest.mark.slow
def test_a_committed_file_past_the_size_limit_is_refused_before_it_is_read(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    bad_base_run(repo, b"k: 1\n#" + b"x" * (32 * 2**20))
    error = unreadable(every_format(cli, "HEAD"))
    assert error.startswith(f"HEAD:{RUN.as_posix()}: is 32.0 MiB, more than the 32 MiB")


# 3. Any ref git accepts names the base; anything else is one line that says what to do.


@pytest.fixture
def two_commits(repo: Path) -> Path:
    """The example committed (tagged v1), then a commit that lowers the learning rate."""
    git(repo, "tag", "-a", "v1", "-m", "v1")
    git(repo, "tag", "light")
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    git(repo, "commit", "-qam", "lower lr")
    return repo


def head_sha(repo: Path, ref: str) -> str:
    done = subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.mark.parametrize(
    "ref", ["HEAD@{1}", "main@{1}", "HEAD~1", "main^", "v1", "light", "HEAD@{yesterday}", "short"]
)
def test_any_commit_git_names_is_a_base(
    two_commits: Path, cli: Callable[..., CliResult], ref: str
) -> None:
    base = head_sha(two_commits, "HEAD~1")
    ref = base[:9] if ref == "short" else ref
    data = review(cli, ref)
    assert data["base_commit"] == base
    [change] = folder(data)["changes"]
    assert (change["key"], change["before"], change["after"]) == ("optimizer.lr", 0.0003, 0.0001)


@pytest.mark.parametrize(
    ("ref", "said"),
    [
        ("-h", "git would read it as an option"),
        ("--output=stolen", "git would read it as an option"),
        ("HEAD@{99}", "fetch-depth: 0"),
        ("HEAD^{tree}", "expected commit type, but the object dereferences to tree type"),
        ("main:lora_rank_study", "fetch-depth: 0"),
        ("main..HEAD", "fetch-depth: 0"),
        ("main\nHEAD", "fetch-depth: 0"),
        ("main\x00", "fetch-depth: 0"),
        ("", "fetch-depth: 0"),
    ],
)
def test_what_names_no_commit_is_one_error_line(
    two_commits: Path, cli: Callable[..., CliResult], ref: str, said: str
) -> None:
    result = cli("diff", f"--base={ref}")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: ") and len(result.err.splitlines()) == 1
    assert said in result.err
    assert not (two_commits / "stolen").exists()


# 4. One unreadable folder is a line of the table; the other folders are still compared.


@pytest.mark.parametrize("side", ["base commit", "working tree"])
def test_one_unreadable_experiment_leaves_the_rest_of_the_table(
    repo: Path, cli: Callable[..., CliResult], side: str
) -> None:
    shutil.copytree(EXAMPLES / "lr_batch_sweep", repo / "sweep")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two experiments")
    sweep_run = repo / "sweep" / "configs" / "run_000.yaml"
    if side == "base commit":
        kept = sweep_run.read_bytes()
        sweep_run.write_text("k: [unclosed\n")
        git(repo, "commit", "-qam", "broken")
        sweep_run.write_bytes(kept)
    else:
        sweep_run.write_text("k: [unclosed\n")
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    data = review(cli, "HEAD")
    assert "is not closed" in unreadable(data, "sweep")
    [change] = folder(data)["changes"]
    assert change["key"] == "optimizer.lr"
    text = cli("diff", "--base", "HEAD")
    assert text.code == 0
    assert "\nsweep: unreadable, not compared: " in text.out
    assert "  ~ optimizer.lr: 0.0003 → 0.0001  (all 4 runs)\n" in text.out
    markdown = cli("diff", "--base", "HEAD", "--format", "markdown")
    assert markdown.code == 0 and "not fetched" not in markdown.out
    assert "### `sweep`: unreadable, not compared\n\nReason: `" in markdown.out
    assert "| changed | all 4 runs | `optimizer.lr` | `0.0003` | `0.0001` |" in markdown.out


# 5. Every text from the repository is text: in Markdown a code span, in the terminal printable.

HOSTILE = [
    "```",
    "<img src=x onerror=alert(1)>",
    "<h1>big</h1>",
    "@user",
    "@org/team",
    "a|b",
    "a\\|b",
    "line\n<h1>x</h1>\n```\n@user",
    "`tick` and ``two``",
    "\x1b[31mred\r<b>",
    "~~~",
    "  ",
]
FOLDERS = ["we`ird|<h1>@org/team", "x\n```\n<b>@user", "@x|`|"]


def hostile_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose generated folders were written by an attacker: every folder name,
    key, value, param and recorded base holds Markdown, HTML, mentions and control characters."""
    root = tmp_path / "hostile"
    folders = [root / name / "configs" for name in FOLDERS]
    for configs in folders:
        configs.mkdir(parents=True)
        mapping = {"runs": [{"id": "run_000", "params": {h: h for h in HOSTILE}}]}
        mapping["runs"].append({"id": "run_001", "params": {"p": HOSTILE[1]}})
        (configs / "run_mapping.yaml").write_text(json.dumps(mapping))
        (configs / "run_000.yaml").write_text(json.dumps({h: "old" for h in HOSTILE}))
        (configs / "base.lock.yaml").write_text(f"# recipe: {HOSTILE[1]} @org/team |\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    for configs in folders[:2]:
        mapping["runs"][1] = {"id": "run_002", "params": {"p": HOSTILE[2]}}
        (configs / "run_mapping.yaml").write_text(json.dumps(mapping))
        (configs / "run_000.yaml").write_text(json.dumps({h: h for h in HOSTILE[::-1]}))
        (configs / "base.lock.yaml").write_text("# recipe: ``` @user | <h1>\n")
    (folders[2] / "run_000.yaml").write_text("<h1>: [@user\n")  # unreadable, with a reason
    monkeypatch.chdir(root)
    return root


_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def outside_code_spans(line: str) -> str:
    """``line`` with every code span (a backtick run to the next run as long) taken out;
    fails on one that is not closed on its line."""
    rest, index = [], 0
    while index < len(line):
        if line[index] != "`":
            rest.append(line[index])
            index += 1
            continue
        run = len(re.match("`+", line[index:])[0])  # type: ignore[index]
        close = re.compile(f"(?<!`)`{{{run}}}(?!`)").search(line, index + run)
        assert close, f"a code span left open: {line!r}"
        rest.append("C")
        index = close.end()
    return "".join(rest)


def assert_safe_markdown(markdown: str) -> None:
    """Nothing of the repository's acts: no HTML, no mention, no fence, no broken table row."""
    starts = ("## ", "### ", "| ", "|---", "Generated configs compared with ", "Base ", "Reason: ")
    for line in markdown.splitlines():
        if not line:
            continue
        assert line.startswith(starts), f"a line the table did not write: {line!r}"
        text = outside_code_spans(line)
        for acting in ("<", ">", "@", "&", "\\", "*", "_", "[", "~"):
            assert acting not in text, f"{acting!r} outside a code span: {line!r}"
        if line.startswith("|"):  # 5 cells: 6 pipes not escaped, code spans or not (GFM)
            assert len(_CELL_SPLIT.findall(line)) == 6, f"a broken row: {line!r}"
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", markdown)


def test_markdown_renders_every_repository_text_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    hostile_repo(tmp_path, monkeypatch)
    result = cli("diff", "--base", "main", "--format", "markdown")
    assert result.code == 0, result.err
    assert_safe_markdown(result.out)
    lines = result.out.splitlines()
    assert len([line for line in lines if line.startswith("### ")]) == 3
    assert len([line for line in lines if line.startswith("| changed |")]) == 2 * len(HOSTILE)
    assert len([line for line in lines if ": unreadable, not compared" in line]) == 1
    assert "| added | `run_002` |" in result.out and "Base changed: `" in result.out


def test_the_text_table_writes_control_characters_and_line_breaks_as_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    root = hostile_repo(tmp_path, monkeypatch)
    result = cli("diff", "--base", "main", "--output", root / "table.txt")
    assert result.code == 0, result.err
    text = (root / "table.txt").read_text()
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", text)
    assert "\\x1b[31mred\\x0d<b>" in text and "line\\n<h1>x</h1>\\n```\\n@user" in text
    for line in text.splitlines():  # every line is one the table wrote, none a value's
        assert re.match(r"Runs compared with |  |we`ird|x\\n```|@x\|", line), line
