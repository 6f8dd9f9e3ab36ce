"""The documents stand alone, the README stays a short guide, and no document reads as a work log."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

DOCUMENTS = ["README.md", "bench/README.md", "docs/results.md", "docs/toy-world.md"]
UPWARD_PATH = re.compile(r"(?:\.\./)+[\w./-]*")
README_MAX_LINES = 250
WORK_LOG = re.compile(r"\bissue \d+|\brun \d+|\bruns \d+|\bsession\b|filing", re.IGNORECASE)
"""Numbered references to earlier work and to how the project was made: history lives in git, a document says
what is and why."""


def _all_documents() -> list[str]:
    return sorted({*DOCUMENTS, *(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md"))})


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_path_in_a_document_leaves_the_repository(name):
    document = REPO / name
    for path in UPWARD_PATH.findall(document.read_text()):
        assert (document.parent / path).resolve().is_relative_to(REPO), f"{name}: {path}"


def test_the_readme_is_a_short_guide():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"


@pytest.mark.parametrize("name", _all_documents())
def test_no_document_reads_as_a_work_log(name):
    text = (REPO / name).read_text()
    found = [
        f"line {text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}" for match in WORK_LOG.finditer(text)
    ]
    assert not found, f"{name}: " + "; ".join(found)


@pytest.mark.parametrize("name", _all_documents())
def test_every_relative_link_of_a_document_exists(name):
    document = REPO / name
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text()):
        assert (document.parent / target).exists(), f"{name}: {target}"
