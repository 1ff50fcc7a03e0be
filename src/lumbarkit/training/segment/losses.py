"""Losses for partly labelled segmentation targets (see :mod:`lumbarkit.training.segment.data`)."""

from __future__ import annotations

import torch


def marginal_cross_entropy(logits: torch.Tensor, allowed: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log sum_{c allowed} softmax(logits)_c`` over valid pixels.

    logits: (B, C, H, W); allowed: (B, C, H, W) bool; valid: (B, H, W) bool.
    """
    masked = logits.masked_fill(~allowed, float("-inf"))
    per_pixel = torch.logsumexp(logits, dim=1) - torch.logsumexp(masked.masked_fill(~valid[:, None], 0.0), dim=1)
    n = valid.sum().clamp(min=1)
    return (per_pixel * valid).sum() / n


def determinate_dice_loss(logits: torch.Tensor, allowed: torch.Tensor, valid: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice per class over pixels whose membership of that class is known.

    A pixel is known positive for class c when c is its only allowed class, and known negative
    when c is not allowed; ambiguous pixels (c among several allowed) are left out for class c.
    """
    probs = torch.softmax(logits, dim=1)
    single = allowed.sum(dim=1, keepdim=True) == 1
    positive = (allowed & single & valid[:, None]).float()
    known = ((positive > 0) | (~allowed & valid[:, None])).float()
    inter = (probs * positive).sum(dim=(0, 2, 3))
    denom = (probs * known).sum(dim=(0, 2, 3)) + positive.sum(dim=(0, 2, 3))
    present = positive.sum(dim=(0, 2, 3)) > 0
    if not present.any():
        return logits.sum() * 0.0
    dice = (2 * inter + eps) / (denom + eps)
    return 1.0 - dice[present].mean()
