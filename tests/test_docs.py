"""The documents stand alone: no path in them leads outside the repository."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

DOCUMENTS = ["README.md", "bench/README.md"]
UPWARD_PATH = re.compile(r"(?:\.\./)+[\w./-]*")


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_path_in_a_document_leaves_the_repository(name):
    document = REPO / name
    for path in UPWARD_PATH.findall(document.read_text()):
        assert (document.parent / path).resolve().is_relative_to(REPO), f"{name}: {path}"
