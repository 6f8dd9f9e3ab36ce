"""The shipped toy editors and the rendered toy world stay byte for byte what they were recorded as.

``toyworld/models/SHA256SUMS`` is ``sha256sum`` of each file of the shipped checkpoints, recorded when they were
trained (``make train-toy-editor``); the scene and pair digests are ``scene_digests`` of the rendered toy world.
Retraining the toy editor or changing the renderer on purpose means recording new values here, in the same commit.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import cv2

from toyworld import TOY_EDITOR, SceneSpec, write_scene
from toyworld.pairs import write_pairs

MODELS = Path(TOY_EDITOR).parent
MANIFEST = MODELS / "SHA256SUMS"

SCENE = {
    "images": "83a2f19fc1dc3bfc4b34c936a818c07324823a1de38b146cff58490d28b99075",
    "masks": "32a681bbb2bf0de6b75cee1a196758ea23e976ef8e8dc7e60136a7288fa4b2a6",
    "scene.json": "62e5117b7a88047e01a00143cae7e4514be79c4a83b4b04ccad3c8d9726af93f",
    "transforms.json": "2164abb05fbe7dfe341cd68c1f0ce7511f5fb37aa572b51e42b4e46fbdae08ca",
}
PAIRS = {
    "edited": "0d56309baaf1ef341932f422fb545d2d720997eea8a57e5c453c68767797f106",
    "input": "fc7a6a7fb7cd4ee6eb6953aa3f4d51f61b89a45ffb555d252f7696a033e301ea",
    "mask": "88c978e9de78726a4ce68decf60e0492d9e1d03951e753be07a134a7e6adf88c",
    "metadata.jsonl": "ac3d42e73187666c2bd777ba59c2d6435bea4694ea97db415690cb23f56c8827",
}


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def scene_digests(folder: Path) -> dict[str, str]:
    """SHA-256 per top-level entry of ``folder`` over its files' paths and contents, in path order.

    A PNG counts by its decoded pixels (shape, dtype, values), so another libpng or zlib that packs the same
    pixels differently does not count as a change; a JSON file by its values with floats to 9 significant digits,
    so the last bit of a camera pose that numpy's trigonometry gives on another CPU does not count either; every
    other file counts by its bytes.
    """
    found = defaultdict(hashlib.sha256)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".png":
            pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            content = f"{pixels.shape} {pixels.dtype}\n".encode() + pixels.tobytes()
        elif path.suffix == ".json":
            content = json.dumps(_rounded(json.loads(path.read_text())), sort_keys=True).encode()
        else:
            content = path.read_bytes()
        found[name.split("/")[0]].update(name.encode() + b"\n" + content)
    return {entry: digest.hexdigest() for entry, digest in found.items()}


def test_the_shipped_toy_editors_match_their_manifest():
    lines = MANIFEST.read_text().splitlines()
    recorded = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}  # sha256sum's format
    shipped = {p.relative_to(MODELS).as_posix() for p in MODELS.rglob("*") if p.is_file() and p != MANIFEST}
    assert shipped == recorded.keys()  # no file added or lost
    for name, digest in recorded.items():
        assert hashlib.sha256((MODELS / name).read_bytes()).hexdigest() == digest, name


def test_a_rendered_toy_scene_is_unchanged(tmp_path):
    write_scene(tmp_path, SceneSpec(views=6, size=32))
    assert scene_digests(tmp_path) == SCENE


def test_rendered_toy_pairs_are_unchanged(tmp_path):
    write_pairs(tmp_path, count=4, kinds=("recolour", "move"), split="test", size=32, seed=0)
    assert scene_digests(tmp_path) == PAIRS
