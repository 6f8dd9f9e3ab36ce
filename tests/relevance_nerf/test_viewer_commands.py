"""Every ns-viewer command the project documents or prints binds to 127.0.0.1 (ns-viewer's own default is 0.0.0.0)."""

from __future__ import annotations

import ast
import re
import shlex

import tyro
from nerfstudio.scripts.viewer.run_viewer import RunViewer

from tests.conftest import REPO

DOCUMENTS = ["README.md", "bench/README.md"]
PACKAGES = ["editaction", "relevance_nerf", "toyworld", "scripts"]
COMMAND = re.compile(r"ns-viewer(?: +--[^`\"'\n]*)")  # "ns-viewer" with options, to the end of its line or quote


def _python_strings(source: str) -> list[str]:
    """The string literals of a module, f-strings with "{}" for their fields (implicit concatenation joined)."""
    nodes = list(ast.walk(ast.parse(source)))
    f_strings = [node for node in nodes if isinstance(node, ast.JoinedStr)]
    parts = {id(part) for node in f_strings for part in node.values}
    plain = [node.value for node in nodes if isinstance(node, ast.Constant) and id(node) not in parts]
    return [value for value in plain if isinstance(value, str)] + [
        "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values) for node in f_strings
    ]


def _viewer_commands() -> dict[str, list[str]]:
    """The ns-viewer commands of each document and module (shell line continuations joined)."""
    texts = {name: [(REPO / name).read_text().replace("\\\n", " ")] for name in DOCUMENTS}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            texts[str(path.relative_to(REPO))] = _python_strings(path.read_text())
    commands = {name: [m for text in found for m in COMMAND.findall(text)] for name, found in texts.items()}
    return {name: found for name, found in commands.items() if found}


def test_every_printed_or_documented_ns_viewer_command_binds_to_localhost():
    commands = _viewer_commands()
    assert {"README.md", "scripts/demo.py"} <= commands.keys()  # the test sees the commands it is about
    for name, found in commands.items():
        for command in found:
            viewer = tyro.cli(RunViewer, args=shlex.split(command)[1:])
            assert viewer.viewer.websocket_host == "127.0.0.1", f"{name}: {command}"
