"""A non-editable install (the wheel) holds every package and every file of the shipped toy editors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO

PACKAGES = ["editaction", "relevance_nerf", "toyworld"]
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "outputs", "build", "*.egg-info", "__pycache__", ".*_cache")


def test_the_wheel_holds_every_package_and_the_toy_editors(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools writes build/ and *.egg-info into the tree it builds
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("relevance_edit-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        path.relative_to(REPO).as_posix()
        for package in PACKAGES
        for path in (REPO / package).rglob("*")
        if path.is_file() and (path.suffix == ".py" or "models" in path.relative_to(REPO).parts)
    }
    assert any(name.startswith("toyworld/models/toy-editor-action/") for name in expected)
    assert sorted(expected - in_wheel) == []
