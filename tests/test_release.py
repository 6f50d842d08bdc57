"""Releases: the sdist and the wheel build and pass twine's check, the release workflow lints
clean, and a tag, pyproject.toml, ``__version__``, CHANGELOG.md and the versions the docs pin agree
(.github/scripts/check_release.py, which the workflow runs on the tag: docs/releasing.md).

Installing a tag as the README says, and its pre-commit hook, is in tests/test_pre_commit.py.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

import torchtune_config_writer

from .conftest import REPO, copy_working_tree

BIN = Path(sys.executable).parent
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
CHECK_RELEASE = REPO / ".github" / "scripts" / "check_release.py"
PACKAGE_DATA = (
    "torchtune_config_writer/experiment.schema.json",
    "torchtune_config_writer/py.typed",
    "torchtune_config_writer/launchers/slurm_array.sh.template",
)


def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    found = re.search(r'(?m)^version = "([^"]+)"', text)
    assert found is not None
    return found.group(1)


def check_release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_RELEASE), *args], cwd=root, capture_output=True, text=True
    )


def test_the_version_the_docs_pin_is_the_projects_and_the_changelog_names_it() -> None:
    # What a user copies from the README or the docs installs the release of this version.
    result = check_release(REPO, f"v{project_version()}")
    assert result.returncode == 0, result.stderr
    assert torchtune_config_writer.__version__ == project_version()


@pytest.fixture
def release_files(tmp_path: Path) -> Path:
    """The files check_release.py reads, copied: a project at version 1.4.0 with its docs."""
    for name in ("pyproject.toml", "CHANGELOG.md", "src/torchtune_config_writer/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(
            (REPO / name).read_text().replace(project_version(), "1.4.0", 1)
        )
    (tmp_path / "README.md").write_text(
        'pip install "git+https://github.com/lab/torchtune-config-writer@v1.4.0"\n'
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pre-commit.md").write_text(
        "```yaml\nrepos:\n- repo: https://github.com/pre-commit/pre-commit-hooks\n"
        "  rev: v4.6.0     # another repository's release: not ours to check\n"
        "  hooks:\n  - id: check-yaml\n"
        "- repo: https://github.com/lab/torchtune-config-writer\n  rev: v1.4.0\n```\n"
    )
    return tmp_path


def test_a_release_whose_files_agree_passes_and_writes_its_changelog_section(
    release_files: Path,
) -> None:
    changelog = release_files / "CHANGELOG.md"
    changelog.write_text(
        "# Changelog\n\n## Unreleased\n\n- next\n\n## 1.4.0\n\nThe notes.\n\n- one\n\n## 1.3.0\n"
    )
    result = check_release(release_files, "v1.4.0", "--notes", "out/notes.md")
    assert result.returncode == 0, result.stderr
    assert (release_files / "out" / "notes.md").read_text() == "The notes.\n\n- one\n"


def test_a_tag_that_is_not_the_version_fails(release_files: Path) -> None:
    result = check_release(release_files, "v1.4.1", "--notes", "notes.md")
    assert result.returncode == 1
    assert result.stderr == "error: the tag v1.4.1 is not v1.4.0, the version of pyproject.toml\n"
    assert not (release_files / "notes.md").exists()


def test_a_version_without_its_changelog_heading_or_package_version_fails(
    release_files: Path,
) -> None:
    changelog = release_files / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## Unreleased\n\n- 1.4.0 is coming\n\n## 1.3.0\n")
    init = release_files / "src" / "torchtune_config_writer" / "__init__.py"
    init.write_text(init.read_text().replace('"1.4.0"', '"1.3.0"'))
    result = check_release(release_files, "v1.4.0")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: src/torchtune_config_writer/__init__.py: __version__ is 1.3.0, not 1.4.0 "
        "(pyproject.toml)",
        "error: CHANGELOG.md: no '## 1.4.0' heading: move 'Unreleased' under it",
    ]


def test_docs_that_pin_another_release_fail_naming_the_line(release_files: Path) -> None:
    readme = release_files / "README.md"
    readme.write_text(
        readme.read_text()
        + "      - uses: lab/torchtune-config-writer@v1.3.0   # the Action\n"
        + "`pip install git+https://github.com/lab/torchtune-config-writer@v1.4.0rc1`\n"
    )
    docs = release_files / "docs" / "pre-commit.md"
    docs.write_text(docs.read_text().replace("rev: v1.4.0", "rev: 'v1.2.0'  # pinned"))
    (release_files / "examples" / "github").mkdir(parents=True)
    (release_files / "examples" / "github" / "ci.yml").write_text(
        "steps:\n  - uses: lab/torchtune-config-writer@v1.4.0\n"
    )
    result = check_release(release_files, "v1.4.0")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: README.md:2: pins v1.3.0, not v1.4.0 (pyproject.toml)",
        "error: README.md:3: pins v1.4.0rc1, not v1.4.0 (pyproject.toml)",
        "error: docs/pre-commit.md:8: pins v1.2.0, not v1.4.0 (pyproject.toml)",
    ]


def test_the_release_workflow_builds_on_version_tags_and_publishes_to_no_index() -> None:
    text = WORKFLOW.read_text()
    workflow = yaml.safe_load(text)
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads `on` as true
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == {
        "build": {"contents": "read"},
        "release": {"contents": "write"},
    }
    steps = jobs["build"]["steps"]
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["persist-credentials"] is False
    runs = "\n".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    assert 'python .github/scripts/check_release.py "$TAG"' in runs
    assert "python -m build\n" in runs and "twine check --strict dist/*" in runs
    assert 'gh release create "$TAG" artifacts/dist/*' in runs
    for uses in re.findall(r"uses: (\S+.*)", text):
        assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", uses), uses
    # Releases go to GitHub only; publishing to a package index is future work.
    steps = [step for job in jobs.values() for step in job["steps"]]
    assert not [step for step in steps if re.search(r"pypi|publish", step.get("uses", ""), re.I)]
    assert "twine upload" not in runs


@pytest.mark.needs_cli("check-jsonschema", "actionlint")
def test_the_release_workflow_follows_githubs_schema_and_lints_clean() -> None:
    workflow = str(WORKFLOW.relative_to(REPO))
    schema = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = tool("actionlint", workflow)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.needs_cli("zizmor")
def test_zizmor_finds_no_security_problem_in_the_release_workflow() -> None:
    # The auditor persona: every finding, the low-confidence ones too.
    result = tool("zizmor", "--offline", "--persona", "auditor", str(WORKFLOW.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, cwd=REPO)


BUILD_TOOLS_ABSENT = [name for name in ("build", "twine") if importlib.util.find_spec(name) is None]


@pytest.mark.slow
@pytest.mark.skipif(
    bool(BUILD_TOOLS_ABSENT),
    reason=f"needs {' and '.join(BUILD_TOOLS_ABSENT)} (requirements-test.txt), not installed here",
)
def test_the_sdist_and_the_wheel_build_pass_twines_check_and_hold_the_package_data(
    tmp_path: Path,
) -> None:
    # As the release workflow builds them: the wheel from the sdist, in isolated environments.
    source = tmp_path / "source"
    copy_working_tree(source)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    version = project_version()
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    assert sdist.name == f"torchtune_config_writer-{version}.tar.gz"
    assert wheel.name == f"torchtune_config_writer-{version}-py3-none-any.whl"
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= in_wheel
    with tarfile.open(sdist) as archive:
        in_sdist = {name.partition("/")[2] for name in archive.getnames()}
    assert {f"src/{name}" for name in PACKAGE_DATA} <= in_sdist
    entry_points = zipfile.ZipFile(wheel).read(
        f"torchtune_config_writer-{version}.dist-info/entry_points.txt"
    )
    assert b"torchtune-config-writer = torchtune_config_writer.cli:main" in entry_points
    shutil.rmtree(source)
