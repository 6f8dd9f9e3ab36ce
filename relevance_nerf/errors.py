"""The error raised for user mistakes in a relevance-edit run; the trainer shows its message as one line."""


class RelevanceEditError(ValueError):
    """A bad instruction, checkpoint, editor or data set."""
