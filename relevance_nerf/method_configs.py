"""Method presets registered with nerfstudio (entry-point group ``nerfstudio.method_configs``).

- ``relevance-edit``: nerfacto's published settings plus the relevance field and edits.
- ``nerfacto-offline``: nerfacto's published settings with LPIPS only from local weights, so it trains
  on machines without internet; the starting point of ``relevance-edit`` in the GPU demo.

The CPU-sized presets for the toy world (``relevance-edit-tiny``, ``nerfacto-tiny``) are in
``toyworld.method_configs``.

The viewer binds to 127.0.0.1 (``--viewer.websocket-host 0.0.0.0`` opts in to every interface).
"""

from __future__ import annotations

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from relevance_nerf.datamanager import RelevanceEditDataManagerConfig
from relevance_nerf.model import RELEVANCE_HEAD, OfflineNerfactoModelConfig, RelevanceNerfactoModelConfig
from relevance_nerf.pipeline import RelevanceEditPipelineConfig
from relevance_nerf.trainer import RelevanceEditTrainerConfig

LOCAL_VIEWER_HOST = "127.0.0.1"
INSTRUCT_NERF2NERF_OPTIONS = [
    "--pipeline.edit.threshold", "0",
    "--pipeline.strength-range", "0.02", "0.98",
    "--pipeline.edit.text-guidance", "7.5", "--pipeline.edit.image-guidance", "1.5",
    "--pipeline.edit-rate", "10", "--pipeline.views-per-edit", "1", "--pipeline.first-round", "False",
]  # fmt: skip
"""``ns-train`` options that make any relevance-edit preset Instruct-NeRF2NeRF as published (no mask, its random
strength in [0.02, 0.98], guidance 7.5 / 1.5, one view every 10 steps and no first round): the baseline of the demo
and of the 3D benches."""
# nerfacto's published model settings (nerfstudio's method_configs["nerfacto"]).
NERFACTO_MODEL = dict(
    eval_num_rays_per_chunk=1 << 15, average_init_density=0.01, camera_optimizer=CameraOptimizerConfig(mode="SO3xR3")
)


def nerfacto_optimizers(max_steps: int, with_relevance: bool) -> dict:
    """nerfacto's Adam + exponential decay groups; the relevance head gets its own group."""

    def group(lr: float, lr_final: float, steps: int) -> dict:
        return {
            "optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=steps),
        }

    groups = {
        "proposal_networks": group(1e-2, 1e-4, max_steps),
        "fields": group(1e-2, 1e-4, max_steps),
        "camera_opt": group(1e-3, 1e-4, 5000),
    }
    if with_relevance:
        groups[RELEVANCE_HEAD] = group(5e-3, 1e-4, max_steps)
    return groups


def _full_trainer_settings() -> dict:
    """nerfacto's published trainer settings, shared by the full-size presets."""
    return dict(
        steps_per_eval_batch=500,
        mixed_precision=True,
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15, websocket_host=LOCAL_VIEWER_HOST),
        vis="viewer",
    )


def datamanager_config(config_class: type, rays: int) -> VanillaDataManagerConfig:
    """A nerfstudio-data datamanager of ``config_class`` sampling ``rays`` rays per batch."""
    return config_class(
        dataparser=NerfstudioDataParserConfig(), train_num_rays_per_batch=rays, eval_num_rays_per_batch=rays
    )


NERFACTO_RAYS = 4096

relevance_edit = MethodSpecification(
    config=RelevanceEditTrainerConfig(
        method_name="relevance-edit",
        steps_per_save=250,
        max_num_iterations=4000,  # WYS: 4000 (IN2N: 15000)
        pipeline=RelevanceEditPipelineConfig(
            datamanager=datamanager_config(RelevanceEditDataManagerConfig, NERFACTO_RAYS),
            model=RelevanceNerfactoModelConfig(**NERFACTO_MODEL),
        ),
        optimizers=nerfacto_optimizers(200000, with_relevance=True),
        **_full_trainer_settings(),
    ),
    description="Edit a trained nerfacto scene by a text instruction, only where the instruction applies.",
)

nerfacto_offline = MethodSpecification(
    config=TrainerConfig(
        method_name="nerfacto-offline",
        steps_per_save=2000,
        max_num_iterations=30000,  # nerfstudio's nerfacto
        pipeline=VanillaPipelineConfig(
            datamanager=datamanager_config(VanillaDataManagerConfig, NERFACTO_RAYS),
            model=OfflineNerfactoModelConfig(**NERFACTO_MODEL),
        ),
        optimizers=nerfacto_optimizers(200000, with_relevance=False),
        **_full_trainer_settings(),
    ),
    description="nerfacto's published settings that never download weights (LPIPS only when cached).",
)
