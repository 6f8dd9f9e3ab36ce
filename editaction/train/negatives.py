"""Negative instructions for the action loss: ones that share no token with the right one."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class NoNegativeError(ValueError):
    """An instruction has no token-disjoint partner in the data set."""


def content_tokens(tokenizer, text: str) -> frozenset[int]:
    """Token ids of ``text`` without special tokens (start, end, padding)."""
    return frozenset(tokenizer(text, add_special_tokens=False).input_ids)


def disjoint_candidates(tokenizer, instructions: Sequence[str]) -> list[torch.Tensor]:
    """For each instruction, the indices of the instructions that share none of its tokens.

    Raises ``NoNegativeError`` naming the first instruction that has none.
    """
    tokens = [content_tokens(tokenizer, text) for text in instructions]
    candidates = []
    for i, own in enumerate(tokens):
        partners = [j for j, other in enumerate(tokens) if j != i and not own & other]
        if not partners:
            raise NoNegativeError(
                f"no instruction in the data set shares no token with {instructions[i]!r}; the action loss "
                "needs token-disjoint instructions (add more varied instructions, or set lambda_action to 0)"
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
