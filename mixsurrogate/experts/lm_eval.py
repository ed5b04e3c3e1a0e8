"""Per-token log-probabilities and per-set losses of a model on the evaluation sequences.

Scoring (experts) and evaluation (proxy runs) share :func:`token_logprobs`, so a runs-log loss
is exactly the masked mean of what an expert's score store would hold for the same model.
"""

from __future__ import annotations

import numpy as np
import torch

from ..corpus.evalsets import EvalSequences, EvalSuite


@torch.no_grad()
def token_logprobs(
    model: torch.nn.Module, seqs: EvalSequences, batch_size: int, device: torch.device
) -> np.ndarray:
    """(S, P) float32: log p(tokens[:, j + 1] | tokens[:, :j + 1]).

    No bf16 autocast here even on a GPU: bf16 logits would put ~0.02 nats of rounding into
    every cached log-probability, and evaluation is a small share of the compute.
    """
    was_training = model.training
    model.eval()
    out = np.empty(seqs.mask.shape, dtype=np.float32)
    for start in range(0, len(seqs.tokens), batch_size):
        chunk = torch.from_numpy(seqs.tokens[start : start + batch_size]).to(device)
        logits = model(input_ids=chunk[:, :-1]).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp.gather(-1, chunk[:, 1:].unsqueeze(-1)).squeeze(-1)
        out[start : start + len(chunk)] = picked.cpu().numpy()
    model.train(was_training)
    return out


def masked_loss(logp: np.ndarray, mask: np.ndarray) -> float:
    """Mean cross-entropy (nats per token) over the counted positions."""
    return float(-logp[mask].astype(np.float64).mean())


def eval_losses(
    model: torch.nn.Module, suite: EvalSuite, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Loss of ``model`` on every evaluation set of ``suite``, in suite order."""
    return {
        name: masked_loss(token_logprobs(model, s, batch_size, device), s.mask)
        for name, s in suite.sets.items()
    }
