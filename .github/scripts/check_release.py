"""Check that a release tag agrees with the project, before anything is built from it.

    python .github/scripts/check_release.py vX.Y.Z [--notes FILE]

From the repository's root: the tag is ``v`` and ``project.version`` of pyproject.toml;
``__version__`` of the package is that version; CHANGELOG.md has its ``## X.Y.Z`` heading; and
every release the documentation pins (``…/torchtune-config-writer@vX.Y.Z``, the ``rev:`` of a
``.pre-commit-config.yaml`` that uses this repository) is this one, so that what a user copies
from the docs installs. ``--notes FILE`` writes that version's CHANGELOG section to FILE (the
release's notes). Exit code 0 when all agree, else 1 with one ``error:`` line per disagreement.

Run by .github/workflows/release.yml on a pushed tag, and by tests/test_release.py with the
current version's tag (docs/releasing.md). Standard library only: the workflow runs it before
installing anything.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

PYPROJECT = Path("pyproject.toml")
PACKAGE_INIT = Path("src/torchtune_config_writer/__init__.py")
CHANGELOG = Path("CHANGELOG.md")
# Where a user copies a pinned release from (CHANGELOG.md names past ones on purpose).
DOCUMENTATION = ("README.md", "docs/**/*.md", "examples/**/*.yml", "examples/**/*.yaml")

RELEASE = r"v\d+(?:\.\d+)*\S*?"
# `pip install "git+https://…/torchtune-config-writer@v1.2.3"`, `uses: OWNER/…@v1.2.3`.
AT_TAG = re.compile(rf"torchtune-config-writer@({RELEASE})(?=[\s\"'`)]|$)")
REPO_LINE = re.compile(r"^\s*-?\s*repo:\s*(\S+)")
REV_LINE = re.compile(rf"^\s*rev:\s*[\"']?({RELEASE})[\"']?\s*(?:#.*)?$")


def project_version(pyproject: str) -> str | None:
    """``version`` of the ``[project]`` table (a regular expression: Python 3.10 has no tomllib)."""
    table = re.search(r"(?ms)^\[project\]\s*$(.*?)(?=^\[|\Z)", pyproject)
    found = table and re.search(r"(?m)^version\s*=\s*[\"']([^\"']+)[\"']", table.group(1))
    return found.group(1) if found else None


def package_version(init: str) -> str | None:
    found = re.search(r"(?m)^__version__\s*=\s*[\"']([^\"']+)[\"']", init)
    return found.group(1) if found else None


def changelog_section(changelog: str, version: str) -> str | None:
    """The text under ``## version`` up to the next ``## `` heading, or None without one."""
    found = re.search(rf"(?ms)^## {re.escape(version)}[ \t]*\n(.*?)(?=^## |\Z)", changelog)
    return found.group(1).strip() + "\n" if found else None


def pinned_releases(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, tag)`` of each release of this repository that ``text`` pins."""
    repo = ""
    for number, line in enumerate(text.splitlines(), 1):
        for found in AT_TAG.finditer(line):
            yield number, found.group(1)
        if found_repo := REPO_LINE.match(line):
            repo = found_repo.group(1)
        elif (rev := REV_LINE.match(line)) and "torchtune-config-writer" in repo:
            yield number, rev.group(1)


def disagreements(tag: str, root: Path) -> Iterator[str]:
    """One message per way ``tag`` and the files below ``root`` disagree."""
    version = project_version((root / PYPROJECT).read_text(encoding="utf-8"))
    if version is None:
        yield f"{PYPROJECT}: no version in its [project] table"
        return
    if tag != f"v{version}":
        yield f"the tag {tag} is not v{version}, the version of {PYPROJECT}"
    init = package_version((root / PACKAGE_INIT).read_text(encoding="utf-8"))
    if init != version:
        yield f"{PACKAGE_INIT}: __version__ is {init}, not {version} ({PYPROJECT})"
    if changelog_section((root / CHANGELOG).read_text(encoding="utf-8"), version) is None:
        yield f"{CHANGELOG}: no '## {version}' heading: move 'Unreleased' under it"
    for pattern in DOCUMENTATION:
        for path in sorted(root.glob(pattern)):
            for number, pinned in pinned_releases(path.read_text(encoding="utf-8")):
                if pinned != f"v{version}":
                    shown = path.relative_to(root).as_posix()
                    yield f"{shown}:{number}: pins {pinned}, not v{version} ({PYPROJECT})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag", help="the release tag, vX.Y.Z")
    parser.add_argument("--notes", type=Path, help="write the version's CHANGELOG section here")
    args = parser.parse_args(argv)
    found = list(disagreements(args.tag, Path(".")))
    for message in found:
        print(f"error: {message}", file=sys.stderr)
    if found:
        return 1
    if args.notes is not None:
        version = args.tag.removeprefix("v")
        section = changelog_section(CHANGELOG.read_text(encoding="utf-8"), version)
        args.notes.parent.mkdir(parents=True, exist_ok=True)
        args.notes.write_text(section or "", encoding="utf-8")
    print(f"{args.tag}: pyproject.toml, __version__, CHANGELOG.md and the docs agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
