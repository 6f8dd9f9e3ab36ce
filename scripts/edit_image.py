"""Edit an image with a text instruction, only where the instruction applies.

    python scripts/edit_image.py --image photo.png --text "make the cube blue" --out results/

Writes ``<name>_edited.png`` (same bit depth and alpha as the input), the relevance map
as a colour-mapped ``<name>_relevance.png`` and the binary ``<name>_mask.png``, all at the
input's (EXIF-upright) size; the editor itself works at ``--resolution`` (long side, 512 px).
``--no-relevance`` runs plain InstructPix2Pix over the whole image.
"""

from __future__ import annotations

import sys

import tyro

from editaction.edit_image import EditImageArgs, main
from toyworld import TOY_EDIT, TOY_EDITOR, TOY_RELEVANCE

if __name__ == "__main__":
    defaults = EditImageArgs(  # the toy editor's own settings (toyworld.TOY_EDIT, TOY_RELEVANCE)
        image=tyro.MISSING,
        text=tyro.MISSING,
        model=TOY_EDITOR,
        steps=TOY_EDIT.steps,
        text_guidance=TOY_EDIT.text_guidance,
        image_guidance=TOY_EDIT.image_guidance,
        noise_samples=TOY_RELEVANCE.noise_samples,
        iqr_factor=TOY_RELEVANCE.iqr_factor,
        relevance_space=TOY_RELEVANCE.space,
    )
    sys.exit(main(tyro.cli(EditImageArgs, default=defaults, description=__doc__)))
