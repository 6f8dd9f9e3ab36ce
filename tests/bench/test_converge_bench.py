"""bench/converge_3d.py's definition of a converged edit, on hand-made curves."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("converge_3d", REPO / "bench" / "converge_3d.py")
converge_3d = importlib.util.module_from_spec(_spec)
sys.modules["converge_3d"] = converge_3d  # dataclasses look their module up there
_spec.loader.exec_module(converge_3d)


def _points(success, psnr, hue):
    return [
        {"step": i, "seconds": 10.0 * i, "success": s, "psnr_vs_before": p, "hue_spread": h}
        for i, (s, p, h) in enumerate(zip(success, psnr, hue, strict=True))
    ]


def test_converged_at_the_first_point_from_which_all_later_ones_settle():
    points = _points([0.0, 0.5, 0.95, 0.92, 1.0], [30.0, 28.0, 27.2, 27.1, 27.0], [5.0, 3.0, 1.5, 1.2, 1.0])
    assert converge_3d.converged_at(points, psnr_tolerance=0.5, hue_tolerance=1.0)["step"] == 2
    # a tighter PSNR tolerance moves it later: 27.2 is 0.2 dB from the final 27.0
    assert converge_3d.converged_at(points, psnr_tolerance=0.15, hue_tolerance=1.0)["step"] == 3


def test_a_later_relapse_resets_convergence_and_a_failed_final_never_converges():
    relapse = _points([0.95, 0.5, 0.95], [27.0, 27.0, 27.0], [1.0, 1.0, 1.0])
    assert converge_3d.converged_at(relapse, 0.5, 1.0)["step"] == 2
    failed = _points([0.95, 0.95, 0.8], [27.0, 27.0, 27.0], [1.0, 1.0, 1.0])
    assert converge_3d.converged_at(failed, 0.5, 1.0) is None


def test_the_second_half_averages_from_its_first_step_and_keeps_the_lowest_success():
    points = _points([0.0, 1.0, 0.92, 1.0], [39.0, 34.0, 35.0, 36.0], [5.0, 1.0, 2.0, 3.0])
    half = converge_3d.second_half(points, first_step=1)
    assert half == {"success": 0.92, "psnr_vs_before": 35.0, "hue_spread": 2.0}
    # from the first step the unedited start (39 dB) lifts the mean: why the bench averages the second half only
    assert converge_3d.second_half(points, first_step=0)["psnr_vs_before"] == 36.0
    past_the_end = converge_3d.second_half(points, first_step=9)  # the last checkpoint alone
    assert past_the_end == {"success": 1.0, "psnr_vs_before": 36.0, "hue_spread": 3.0}


def test_the_bench_runs_the_shipped_preset_and_the_instruct_nerf2nerf_baseline():
    from relevance_nerf.method_configs import INSTRUCT_NERF2NERF_OPTIONS

    assert converge_3d.SCHEDULES[converge_3d.SHIPPED] == []  # the preset's own defaults
    baseline = converge_3d.SCHEDULES[converge_3d.BASELINE]
    assert baseline[: len(INSTRUCT_NERF2NERF_OPTIONS)] == INSTRUCT_NERF2NERF_OPTIONS
    assert len(converge_3d.SCHEDULES) == 2


def test_the_ratio_line_names_a_schedule_that_never_converged():
    shipped, baseline = converge_3d.SHIPPED, converge_3d.BASELINE
    assert converge_3d.ratio_line({shipped: 20.0, baseline: 80.0}).endswith("ratio 0.25")
    assert "the preset never converged" in converge_3d.ratio_line({shipped: None, baseline: 80.0})
    assert "the baseline never converged" in converge_3d.ratio_line({shipped: 20.0, baseline: None})


def test_a_finished_run_is_reused_only_with_the_options_it_was_trained_with(tmp_path, monkeypatch):
    run = tmp_path / "schedule"
    run.mkdir()
    (run / "started").write_text("123.5\n")
    (run / "done").write_text("")
    options = ["--load-dir", str(tmp_path / "nerfacto"), "--pipeline.edit-count", "1"]
    (run / "settings.json").write_text(json.dumps(["relevance-edit-tiny", "--load-dir", "OUT/nerfacto", *options[2:]]))
    monkeypatch.setattr(converge_3d.subprocess, "run", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert converge_3d._train("relevance-edit-tiny", run, options, tmp_path / "scene") == 123.5
    with pytest.raises(SystemExit, match="trained with other options"):  # the same name, another default
        converge_3d._train("relevance-edit-tiny", run, options[:2], tmp_path / "scene")
    (run / "settings.json").unlink()  # a finished run whose options are unknown
    with pytest.raises(SystemExit, match="trained with other options"):
        converge_3d._train("relevance-edit-tiny", run, options, tmp_path / "scene")
