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
from toyworld import TOY_EDITOR

if __name__ == "__main__":
    defaults = EditImageArgs(image=tyro.MISSING, text=tyro.MISSING, model=TOY_EDITOR)
    sys.exit(main(tyro.cli(EditImageArgs, default=defaults, description=__doc__)))
