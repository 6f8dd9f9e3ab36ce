"""CPU-sized nerfstudio presets for the embedded toy world (entry-point group ``nerfstudio.method_configs``).

- ``relevance-edit-tiny``: relevance-edit at CPU size with the embedded toy editor, for demos and tests.
- ``nerfacto-tiny``: the matching CPU-sized nerfacto, whose checkpoints ``relevance-edit-tiny`` starts from.
"""

from __future__ import annotations

import torch
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from editaction.settings import EditOptions
from relevance_nerf.datamanager import RelevanceEditDataManagerConfig
from relevance_nerf.method_configs import LOCAL_VIEWER_HOST, datamanager_config, nerfacto_optimizers
from relevance_nerf.model import OfflineNerfactoModelConfig, RelevanceNerfactoModelConfig
from relevance_nerf.pipeline import RelevanceEditPipelineConfig
from relevance_nerf.trainer import RelevanceEditTrainerConfig
from toyworld import TOY_EDITOR

CUDA = torch.cuda.is_available()
TINY_DEVICE = "cuda" if CUDA else "cpu"
TINY_IMPLEMENTATION = "tcnn" if CUDA else "torch"  # tinycudann cannot run on CPU; nerfstudio falls back without it

# A model small enough to train in minutes on 2 CPU cores (docs/results.md has its speed).
TINY_MODEL = dict(
    num_levels=8,
    log2_hashmap_size=15,
    max_res=512,
    hidden_dim=32,
    hidden_dim_color=32,
    num_proposal_samples_per_ray=(64, 32),
    num_nerf_samples_per_ray=24,
    proposal_net_args_list=[
        {"hidden_dim": 16, "log2_hashmap_size": 14, "num_levels": 5, "max_res": 64, "use_linear": False},
        {"hidden_dim": 16, "log2_hashmap_size": 14, "num_levels": 5, "max_res": 128, "use_linear": False},
    ],
    eval_num_rays_per_chunk=1 << 12,
    average_init_density=0.01,
    camera_optimizer=CameraOptimizerConfig(mode="off"),  # the toy scene's poses are exact
    implementation=TINY_IMPLEMENTATION,
)
TINY_RAYS = 512


def _tiny_trainer_settings() -> dict:
    """Trainer settings shared by the CPU-sized presets."""
    return dict(
        steps_per_eval_batch=100,
        mixed_precision=False,
        machine=MachineConfig(device_type=TINY_DEVICE),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 12, websocket_host=LOCAL_VIEWER_HOST),
        vis="viewer",
    )


TOY_CROP_MARGIN = 1.0
"""The toy presets edit only the box around each view's mask, widened on each side by its longer side: 3x the box,
still a part of the 64-px view for the toy's small objects; a tighter box leaves the editor too little context and
some views go grey."""

relevance_edit_tiny = MethodSpecification(
    config=RelevanceEditTrainerConfig(
        method_name="relevance-edit-tiny",
        steps_per_save=50,
        # No nerfstudio eval image: it compares a held-out render with the unedited photo, which says nothing of
        # an edit and costs a render before the first edit; the demo judges the edit on held-out views instead.
        steps_per_eval_image=0,
        max_num_iterations=300,
        pipeline=RelevanceEditPipelineConfig(
            datamanager=datamanager_config(RelevanceEditDataManagerConfig, TINY_RAYS),
            model=RelevanceNerfactoModelConfig(**TINY_MODEL),
            editor=TOY_EDITOR,  # its edit_settings.json gives the guidance, steps, relevance and strength range
            edit=EditOptions(crop_margin=TOY_CROP_MARGIN),
            relevance_warmup_steps=50,
            edit_during_warmup=True,  # every view carries an edit by the end of the short warm-up
            edit_rate=5,
            # Two views in one editor call cost little more than one: twice the views carry an edit per step.
            views_per_edit=2,
            # An edit from pure noise needs only the view's mask, not its colours: rendered at half resolution.
            mask_downscale=2,
        ),
        optimizers=nerfacto_optimizers(5000, with_relevance=True),
        **_tiny_trainer_settings(),
    ),
    description="CPU-sized relevance-edit for the embedded toy scene (start from a nerfacto-tiny run).",
)

nerfacto_tiny = MethodSpecification(
    config=TrainerConfig(
        method_name="nerfacto-tiny",
        steps_per_save=500,
        steps_per_eval_image=500,
        max_num_iterations=1500,
        pipeline=VanillaPipelineConfig(
            datamanager=datamanager_config(VanillaDataManagerConfig, TINY_RAYS),
            model=OfflineNerfactoModelConfig(**TINY_MODEL),
        ),
        optimizers=nerfacto_optimizers(5000, with_relevance=False),
        **_tiny_trainer_settings(),
    ),
    description="CPU-sized nerfacto that builds offline; the starting point of relevance-edit-tiny.",
)
