from __future__ import annotations

import pytest
import tyro

from relevance_nerf.method_configs import INSTRUCT_NERF2NERF_OPTIONS, relevance_edit
from toyworld.method_configs import relevance_edit_tiny


@pytest.mark.parametrize("preset", [relevance_edit, relevance_edit_tiny], ids=["relevance-edit", "tiny"])
def test_instruct_nerf2nerf_options_give_any_preset_the_published_schedule(preset):
    """The baseline of the demo and the benches: whatever the preset's own schedule (the tiny one edits 2 views per
    step from pure noise), these options give IN2N's one view every 10 steps, no mask and its strength and guidance."""
    config_type = tyro.conf.FlagConversionOff[type(preset.config)]  # as ns-train parses it
    config = tyro.cli(config_type, default=preset.config, args=[*INSTRUCT_NERF2NERF_OPTIONS, "nerfstudio-data"])
    pipeline = config.pipeline
    assert (pipeline.views_per_edit, pipeline.edit_rate, pipeline.first_round) == (1, 10, False)
    assert pipeline.edit.threshold == 0 and pipeline.strength_range == (0.02, 0.98)
    assert (pipeline.edit.text_guidance, pipeline.edit.image_guidance) == (7.5, 1.5)
