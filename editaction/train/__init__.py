"""EditAction fine-tuning of InstructPix2Pix for action instructions (arXiv 2412.04558)."""
