"""Negative instructions for the action loss: ones that share no token with the right one.

By default only content words count: real captions ("close the lid of a box", "open the
drawer") nearly all share "the" or "a", which would leave them without negatives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

STOP_WORDS = frozenset(
    """
    a an the this that these those some any each every all both another other such
    i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves
    something someone somebody anything anyone anybody nothing nobody everything everyone everybody
    of in into on onto to from at by with without for about against between through during before after
    above below up down out off over under across along around behind beside toward towards upon within
    and or but if as so then than while
    is are was were be been being am has have had do does did s
    """.split()
)
"""Function words that do not tell actions apart: articles, determiners, pronouns, prepositions, conjunctions
and forms of be/have/do, from NLTK's and scikit-learn's English stop-word lists (the indefinite pronouns cover
Something-Something's "[something]" placeholders). Not their negations (no, not, nor) or degree words (more,
very), which change what an instruction asks for."""


class NoNegativeError(ValueError):
    """An instruction has no token-disjoint partner in the data set."""


def content_tokens(tokenizer, text: str, ignore_stop_words: bool = True) -> frozenset[int]:
    """Token ids of ``text`` without special tokens (start, end, padding); with ``ignore_stop_words``, of its
    words other than ``STOP_WORDS`` (case-insensitive, punctuation dropped)."""
    if ignore_stop_words:
        text = " ".join(word for word in re.findall(r"[^\W_]+", text.lower()) if word not in STOP_WORDS)
    return frozenset(tokenizer(text, add_special_tokens=False).input_ids)


def disjoint_candidates(tokenizer, instructions: Sequence[str], ignore_stop_words: bool = True) -> list[torch.Tensor]:
    """For each instruction, the indices of the instructions that share none of its tokens (see ``content_tokens``).

    Raises ``NoNegativeError`` naming the first instruction that has none.
    """
    tokens = [content_tokens(tokenizer, text, ignore_stop_words) for text in instructions]
    candidates = []
    for i, own in enumerate(tokens):
        partners = [j for j, other in enumerate(tokens) if j != i and not own & other]
        if not partners:
            words = "content word (stop words ignored)" if ignore_stop_words else "token"
            raise NoNegativeError(
                f"no instruction in the data set shares no {words} with {instructions[i]!r}; the action loss "
                "needs such instructions (add more varied instructions, or set lambda_action to 0)"
            )
        candidates.append(torch.tensor(partners))
    return candidates


def sample_negatives(
    candidates: Sequence[torch.Tensor], instruction_ids: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """One random token-disjoint instruction index per sample."""
    picks = []
    for index in instruction_ids.tolist():
        options = candidates[index]
        picks.append(options[torch.randint(len(options), (1,), generator=generator)].item())
    return torch.tensor(picks, dtype=torch.long)
