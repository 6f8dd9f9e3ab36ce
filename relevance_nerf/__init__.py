"""nerfstudio method ``relevance-edit``: a relevance field and relevance-masked iterative dataset updates."""
