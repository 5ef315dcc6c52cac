"""Float64 NumPy reference implementations of the noise-robust losses.

Every loss has the signature ``fn(z, zs, t, **hyperparameters)``:

* ``z``: float64 logits ``[N, K]``; the part of the loss that carries gradient
  is computed from these.
* ``zs``: the same logits, used only where the loss applies a stop-gradient
  (focal weights, hard bootstrapping targets). :func:`fd_grad` perturbs ``z``
  while holding ``zs`` at the unperturbed value, which is how a stop-gradient
  shows up in a finite-difference derivative.
* ``t``: float64 dense targets ``[N, K]`` (one-hot or soft).

Each returns the per-example loss ``[N]``; the loss of row ``i`` depends only
on row ``i`` of the inputs. The formulas follow the authors' PyTorch code
(Ma et al., 2020, "Normalized Loss Functions for Deep Learning with Noisy
Labels"; Wang et al., 2019, "Symmetric Cross Entropy"; Zhang & Sabuncu, 2018,
"Generalized Cross Entropy"; Reed et al., 2015, "Bootstrapping").
"""

import numpy as np

#: Lower clip applied to probabilities by GCE, NGCE and RCE.
PROB_CLIP = 1e-7


def log_softmax(z):
    """Exact log-softmax over the last axis."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z):
    """Softmax over the last axis."""
    return np.exp(log_softmax(z))


def _clipped_probs(z):
    return np.clip(softmax(z), PROB_CLIP, 1.0)


def cross_entropy(z, zs, t):
    """Cross-entropy ``-sum_k t_k log p_k`` (also the soft-target loss)."""
    del zs
    return -(t * log_softmax(z)).sum(axis=-1)


soft_target_crossentropy = cross_entropy


def label_smoothing_crossentropy(z, zs, t, smoothing=0.1):
    """Cross-entropy against ``(1 - smoothing) * t + smoothing / K``."""
    k = z.shape[-1]
    return cross_entropy(z, zs, (1.0 - smoothing) * t + smoothing / k)


def max_sup_crossentropy(z, zs, t, alpha=0.1):
    """Cross-entropy plus ``alpha * (max_k z_k - mean_k z_k)``."""
    return cross_entropy(z, zs, t) + alpha * (z.max(axis=-1) - z.mean(axis=-1))


def bootstrapping_crossentropy(z, zs, t, beta=None, mode="soft"):
    """Soft or hard bootstrapping cross-entropy.

    Soft: ``-sum_k [beta t_k + (1 - beta) p_k] log p_k`` with gradient through
    ``p`` in both factors. Hard: the mixed-in target is the one-hot argmax of
    the prediction, which is piecewise constant (taken from ``zs``).
    """
    logp = log_softmax(z)
    if mode == "soft":
        beta = 0.95 if beta is None else beta
        mixed = np.exp(logp)
    elif mode == "hard":
        beta = 0.8 if beta is None else beta
        mixed = np.eye(z.shape[-1])[zs.argmax(axis=-1)]
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return -((beta * t + (1.0 - beta) * mixed) * logp).sum(axis=-1)


def normalized_crossentropy(z, zs, t):
    """NCE: ``(-sum_k t_k log p_k) / (-sum_k log p_k)``."""
    del zs
    logp = log_softmax(z)
    return (t * logp).sum(axis=-1) / logp.sum(axis=-1)


def normalized_focal_crossentropy(z, zs, t, gamma=0.5):
    """NFL with stop-gradient focal weights ``(1 - p)^gamma``.

    Numerator ``-sum_k t_k w_k log p_k`` and denominator ``-sum_k w_k log p_k``
    where ``w = (1 - softmax(zs))^gamma`` carries no gradient.
    """
    logp = log_softmax(z)
    w = (1.0 - softmax(zs)) ** gamma
    return (t * w * logp).sum(axis=-1) / (w * logp).sum(axis=-1)


def generalized_crossentropy(z, zs, t, q=0.7):
    """GCE: ``(1 - (sum_k t_k clip(p)_k)^q) / q``."""
    del zs
    pc = _clipped_probs(z)
    return (1.0 - (t * pc).sum(axis=-1) ** q) / q


def normalized_generalized_crossentropy(z, zs, t, q=0.7):
    """NGCE: ``(1 - (sum_k t_k clip(p)_k)^q) / (K - sum_k clip(p)_k^q)``."""
    del zs
    pc = _clipped_probs(z)
    k = z.shape[-1]
    return (1.0 - (t * pc).sum(axis=-1) ** q) / (k - (pc**q).sum(axis=-1))


def reverse_crossentropy(z, zs, t, label_clip=1e-4):
    """RCE: ``-sum_k clip(p, 1e-7, 1)_k log clip(t, label_clip, 1)_k``."""
    del zs
    return -(_clipped_probs(z) * np.log(np.clip(t, label_clip, 1.0))).sum(axis=-1)


def mean_absolute_error(z, zs, t):
    """MAE as used by the APL losses: ``1 - sum_k t_k p_k`` (no clipping)."""
    del zs
    return 1.0 - (t * softmax(z)).sum(axis=-1)


def symmetric_crossentropy(z, zs, t, alpha=0.1, beta=1.0):
    """SCE: ``alpha * CE + beta * RCE``."""
    return alpha * cross_entropy(z, zs, t) + beta * reverse_crossentropy(z, zs, t)


ACTIVE = {
    "ce": cross_entropy,
    "nce": normalized_crossentropy,
    "nfl": normalized_focal_crossentropy,
    "gce": generalized_crossentropy,
    "ngce": normalized_generalized_crossentropy,
}
PASSIVE = {
    "rce": reverse_crossentropy,
    "mae": mean_absolute_error,
}


def active_passive(z, zs, t, active="nce", passive="rce", alpha=1.0, beta=1.0):
    """APL: ``alpha * active + beta * passive`` with default sub-loss settings."""
    return alpha * ACTIVE[active](z, zs, t) + beta * PASSIVE[passive](z, zs, t)


def fd_grad(fn, z, t, h=1e-6):
    """Central-difference gradient of the batch-mean loss with respect to ``z``.

    Rows are independent, so coordinate ``j`` is perturbed in every row at
    once; ``zs`` stays at the unperturbed ``z`` throughout.

    Args:
        fn: Reference loss ``fn(z, zs, t) -> [N]``.
        z: float64 logits ``[N, K]``.
        t: float64 dense targets ``[N, K]``.
        h: Step size.

    Returns:
        float64 array ``[N, K]``: ``d mean_i fn(z, z, t)_i / dz``.
    """
    z = np.asarray(z, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n, k = z.shape
    grad = np.empty_like(z)
    for j in range(k):
        zp = z.copy()
        zm = z.copy()
        zp[:, j] += h
        zm[:, j] -= h
        step = zp[:, j] - zm[:, j]
        grad[:, j] = (fn(zp, z, t) - fn(zm, z, t)) / step
    return grad / n
