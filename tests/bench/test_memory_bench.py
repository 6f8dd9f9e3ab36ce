"""bench/memory_3d.py's edit-store and relevance warm-up measurements, at a tiny size."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from tests.conftest import REPO
from toyworld import SceneSpec, write_scene

if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))  # memory_3d imports bench/measure.py, as the scripts run from bench/
_spec = importlib.util.spec_from_file_location("memory_3d", REPO / "bench" / "memory_3d.py")
memory_3d = importlib.util.module_from_spec(_spec)
sys.modules["memory_3d"] = memory_3d  # dataclasses look their module up there
_spec.loader.exec_module(memory_3d)


def test_the_edit_store_of_every_view_edited_holds_at_most_4_bytes_a_training_pixel(tiny_checkpoint, tmp_path):
    data = write_scene(tmp_path / "scene", SceneSpec(views=6, size=32)).parent  # 4 training views
    result = memory_3d.measure_store(data, tiny_checkpoint, tmp_path / "run")
    assert (result["views"], result["width"], result["height"]) == (4, 32, 32)
    assert result["changed_fraction"] > 0.9  # threshold 0: the editor's pixels everywhere
    assert 1.0 <= result["targets_bytes_per_pixel"] < 1.1  # uint8, one byte a pixel and a header
    assert 0.0 < result["views_bytes_per_pixel"] <= 3.1  # lossless 8-bit RGB: no float copies
    parts = result["views_bytes_per_pixel"] + result["targets_bytes_per_pixel"] + result["other_bytes_per_pixel"]
    assert result["bytes_per_pixel"] == pytest.approx(parts)
    assert 0.0 < result["bytes_per_pixel"] <= 4.0, result


def test_the_warm_up_peak_is_measured_with_and_beyond_its_8_bit_buffer(tiny_checkpoint, tmp_path):
    data = memory_3d.write_noise_scene(tmp_path / "scene", 4, 32, 24)
    result = memory_3d.measure_warmup(data, tiny_checkpoint, tmp_path / "run")
    assert (result["views"], result["width"], result["height"]) == (4, 32, 24)
    assert result["buffer_mib"] == 4 * 32 * 24 / memory_3d.MIB  # the relevance targets, one byte a pixel
    assert math.isfinite(result["peak_extra"]) and result["peak_extra"] > result["buffer_mib"]  # the editor's work
    assert result["beyond_buffer"] == pytest.approx(result["peak_extra"] - result["buffer_mib"])
    assert result["seconds"] > 0.0
