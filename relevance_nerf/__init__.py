"""nerfstudio method ``relevance-edit``: a relevance field and relevance-masked iterative dataset updates."""

from editaction.quiet import quiet_upstream_warnings
from relevance_nerf.checkpoints import allow_numpy_scalars

quiet_upstream_warnings()  # also set by importing editaction above, before anything here imports nerfstudio
allow_numpy_scalars()  # nerfstudio checkpoints must load with torch's weights_only unpickler
