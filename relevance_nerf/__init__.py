"""nerfstudio method ``relevance-edit``: a relevance field and relevance-masked iterative dataset updates."""

from relevance_nerf.checkpoints import allow_numpy_scalars

allow_numpy_scalars()  # nerfstudio checkpoints must load with torch's weights_only unpickler
