"""The files contributors and citers look for are well formed and say true things.

- ``CITATION.cff`` is valid Citation File Format 1.2.0, checked against the CFF
  schema vendored in ``tests/data/`` (no network, no ``cffconvert``), and carries
  the version, licence and authors of ``pyproject.toml`` and ``_config.yml``.
- ``CHANGELOG.md`` has the Keep a Changelog structure and a section for the
  current version.
- ``CONTRIBUTING.md`` names only paths that exist, ``make`` targets the Makefile
  has and programs the venv has, and lists the stages ``.ci/run`` really runs.
"""

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import softmax_lib

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path(__file__).resolve().parent / "data" / "cff-1.2.0-schema.json"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# The version is dynamic: setuptools reads softmax_lib.__version__.
VERSION = softmax_lib.__version__
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()
CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def cff_errors(document):
    """The CFF 1.2.0 schema's complaints about `document`, as cffconvert checks it
    (JSON Schema draft 7 with format checking)."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


@pytest.fixture(scope="module")
def citation():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_is_valid_cff_1_2_0(citation):
    assert citation["cff-version"] == "1.2.0"
    assert cff_errors(citation) == []


@pytest.mark.parametrize("break_it", ["drop authors", "unknown key", "bad licence"])
def test_the_schema_check_catches_a_broken_citation(citation, break_it):
    broken = copy.deepcopy(citation)
    if break_it == "drop authors":
        del broken["authors"]
    elif break_it == "unknown key":
        broken["licence"] = "MIT"
    else:
        broken["license"] = "MIT License"  # not an SPDX identifier
    assert cff_errors(broken)


def test_citation_matches_the_project(citation):
    assert citation["version"] == VERSION
    assert citation["license"] == PYPROJECT["license"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert citation["authors"] == [{"name": config["author"]}]


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    releases = re.findall(r"^## (.*)$", text, re.M)
    assert releases[0] == "[Unreleased]"
    versions = []
    for heading in releases[1:]:
        match = re.fullmatch(r"\[(\d+)\.(\d+)\.(\d+)\] - \d{4}-\d{2}-\d{2}", heading)
        assert match, f"release heading {heading!r} is not '[X.Y.Z] - YYYY-MM-DD'"
        versions.append(tuple(map(int, match.groups())))
    assert versions == sorted(versions, reverse=True), "releases are not newest first"
    current = tuple(map(int, VERSION.split(".")))
    assert current in versions, f"no section for the version {VERSION}"
    types = set(re.findall(r"^### (.*)$", text, re.M))
    assert types <= CHANGE_TYPES, f"not Keep a Changelog change types: {types - CHANGE_TYPES}"


def code_spans_and_shell_lines(text):
    """The inline code spans of Markdown `text` and the lines of its bash blocks."""
    bash = re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.findall(r"`([^`\n]+)`", prose), [
        line for block in bash for line in block.splitlines()
    ]


SPANS, SHELL = code_spans_and_shell_lines(CONTRIBUTING)
# Named in CONTRIBUTING.md as made by a build, or as absent; everything else must exist.
GENERATED = ("build/", "_build/", ".venv/")
ABSENT: set[str] = set()


def named_paths():
    """Repository paths CONTRIBUTING.md names (templates like kernels_<name>.c skipped)."""
    words = SPANS + [w for line in SHELL for w in line.split()]
    paths = set()
    for word in words:
        word = word.removeprefix("../")
        if "<" in word or word.startswith(("/", "-", "http")) or " " in word:
            continue
        if "/" in word or re.fullmatch(r"[\w.-]+\.(py|c|h|md|txt|yml|toml|cff|json|bib)", word):
            if re.fullmatch(r"[\w./-]+", word) and not word.startswith(GENERATED):
                paths.add(word)
    return sorted(paths)


@pytest.mark.parametrize("path", named_paths())
def test_contributing_names_existing_paths(path):
    if path in ABSENT:
        assert not (ROOT / path).exists(), f"{path} exists now: update CONTRIBUTING.md"
    else:
        assert (ROOT / path).exists()


def makefile_targets():
    return set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), re.M))


def test_contributing_make_targets_exist():
    named = {m for span in SPANS for m in re.findall(r"^make ([\w-]+)", span)}
    named |= {m for line in SHELL for m in re.findall(r"^make ([\w-]+)", line)}
    assert {"test", "book", "lock"} <= named
    assert named <= makefile_targets()


def test_contributing_programs_exist_in_the_venv():
    programs = {p for line in SHELL for p in re.findall(r"\.venv/bin/([\w-]+)", line)}
    assert "python" in programs
    bindir = Path(sys.executable).parent
    assert sorted(p for p in programs if not (bindir / p).exists()) == []


def test_contributing_lists_the_stages_of_ci_run():
    ci_run = re.findall(r"^make ([\w-]+)$", (ROOT / ".ci" / "run").read_text(), re.M)
    listed = re.findall(r"^\d+\. \*\*`make ([\w-]+)`\*\*", CONTRIBUTING, re.M)
    assert ci_run and listed == ci_run


def test_pre_commit_hooks_run_the_pinned_tools_and_targets():
    """Each hook is local and runs a tool of .ci/tools.in from .venv or a make target,
    so a commit is checked with the versions CI pins, offline."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    tools = set(re.findall(r"^([\w-]+)$", (ROOT / ".ci" / "tools.in").read_text(), re.M))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert {"ruff-check", "ruff-format", "ruff-chapters", "mypy"} <= {h["id"] for h in hooks}
    for hook in hooks:
        assert hook["language"] == "system", hook["id"]
        program, *args = hook["entry"].split()
        if program == "make":
            assert set(args[-1:]) <= makefile_targets(), hook["id"]
        else:
            assert program.startswith(".venv/bin/"), hook["id"]
            assert program.removeprefix(".venv/bin/") in tools, hook["id"]
