"""Compare the package's losses with the float64 NumPy reference.

Values and gradients with respect to the logits of ``loss(y_true, y_pred)``
(float32, on the Keras backend in use) are checked against ``tests/losses/reference.py``
(float64, gradients by central finite differences). Logits are drawn in
float64, rounded to float32, and the rounded values are fed to both sides, so
only the arithmetic of the loss itself is compared.
"""

import functools

import numpy as np
import pytest

from keras_robust import losses as krl

from ..backend_tools import value_and_gradient
from . import reference as ref

N = 16
N_SAT_TRUE = 6  # rows saturated on their own label
N_SAT_WRONG = 6  # rows saturated on another class; the remaining rows are random

# Value tolerance for the batch mean. float32 evaluation of these losses lands
# within ~1.5e-7 (relative) of the float64 value for every case here; 1e-6
# leaves a margin of several ulps without hiding a formula error. No atol is
# needed: every batch mixes in rows whose loss is far from zero.
VALUE_RTOL = 1e-6
# Gradient tolerance: |g - g_ref| <= GRAD_ATOL_SCALE * max|g_ref| + GRAD_RTOL *
# |g_ref|. The scaled atol is what binds: entries many orders below the largest
# (e.g. p_k ~ e^-30 on saturated rows) are only meaningful to float32's
# absolute precision at the gradient's overall scale. The largest deviation,
# ~5e-6 of the scale at K=100, comes from losses containing RCE: its upstream
# gradient is nearly the same constant -ln(1e-4) on every class, so the
# softmax backward pass p * (g - sum(p * g)) cancels two numbers of size ~9.2,
# which float32 does to ~1e-6 relative. Everything else stays below ~1e-6.
GRAD_RTOL = 1e-5
GRAD_ATOL_SCALE = 1e-5


def _case(cls, kwargs, fn, case_id):
    """A (class, constructor kwargs, reference with the same kwargs) case."""
    return pytest.param(cls, kwargs, functools.partial(fn, **kwargs), id=case_id)


APL_COMBOS = [
    ("nce", "rce"),
    ("nce", "mae"),
    ("nfl", "rce"),
    ("nfl", "mae"),
    ("ngce", "rce"),
    ("ngce", "mae"),
]

LOSS_CASES = [
    _case(krl.SoftTargetCrossentropy, {}, ref.soft_target_crossentropy, case_id="ce"),
    _case(
        krl.LabelSmoothingCrossentropy,
        {},
        ref.label_smoothing_crossentropy,
        case_id="ls",
    ),
    _case(
        krl.LabelSmoothingCrossentropy,
        {"smoothing": 0.3},
        ref.label_smoothing_crossentropy,
        case_id="ls-0.3",
    ),
    _case(krl.MaxSupCrossentropy, {}, ref.max_sup_crossentropy, case_id="maxsup"),
    _case(
        krl.MaxSupCrossentropy,
        {"alpha": 0.5},
        ref.max_sup_crossentropy,
        case_id="maxsup-0.5",
    ),
    _case(
        krl.BootstrappingCrossentropy,
        {},
        ref.bootstrapping_crossentropy,
        case_id="boot-soft",
    ),
    _case(
        krl.BootstrappingCrossentropy,
        {"mode": "hard"},
        ref.bootstrapping_crossentropy,
        case_id="boot-hard",
    ),
    _case(
        krl.BootstrappingCrossentropy,
        {"beta": 0.6, "mode": "soft"},
        ref.bootstrapping_crossentropy,
        case_id="boot-soft-0.6",
    ),
    _case(krl.NormalizedCrossentropy, {}, ref.normalized_crossentropy, case_id="nce"),
    _case(
        krl.NormalizedFocalCrossentropy,
        {},
        ref.normalized_focal_crossentropy,
        case_id="nfl",
    ),
    _case(
        krl.NormalizedFocalCrossentropy,
        {"gamma": 2.0},
        ref.normalized_focal_crossentropy,
        case_id="nfl-2",
    ),
    _case(krl.GeneralizedCrossentropy, {}, ref.generalized_crossentropy, case_id="gce"),
    _case(
        krl.GeneralizedCrossentropy,
        {"q": 0.5},
        ref.generalized_crossentropy,
        case_id="gce-0.5",
    ),
    _case(
        krl.NormalizedGeneralizedCrossentropy,
        {},
        ref.normalized_generalized_crossentropy,
        case_id="ngce",
    ),
    _case(krl.ReverseCrossentropy, {}, ref.reverse_crossentropy, case_id="rce"),
    _case(krl.MeanAbsoluteError, {}, ref.mean_absolute_error, case_id="mae"),
    _case(krl.SymmetricCrossentropy, {}, ref.symmetric_crossentropy, case_id="sce"),
    _case(
        krl.SymmetricCrossentropy,
        {"alpha": 1.0, "beta": 0.5},
        ref.symmetric_crossentropy,
        case_id="sce-1-0.5",
    ),
    _case(krl.ActivePassiveLoss, {}, ref.active_passive, case_id="apl-default"),
    *[
        _case(
            krl.ActivePassiveLoss,
            {"active": a, "passive": p, "alpha": 10.0, "beta": 0.1},
            ref.active_passive,
            case_id=f"apl-{a}-{p}",
        )
        for a, p in APL_COMBOS
    ],
    _case(
        krl.ActivePassiveLoss,
        {"active": "ce", "passive": "mae", "alpha": 0.5, "beta": 2.0},
        ref.active_passive,
        case_id="apl-ce-mae",
    ),
    _case(
        krl.ActivePassiveLoss,
        {"active": "gce", "passive": "rce", "alpha": 1.0, "beta": 1.0},
        ref.active_passive,
        case_id="apl-gce-rce",
    ),
]

# Losses whose formula is defined for soft targets.
SOFT_TARGET_IDS = {
    "ce",
    "ls",
    "ls-0.3",
    "nce",
    "gce",
    "gce-0.5",
    "rce",
    "mae",
    "sce",
    "sce-1-0.5",
}
SOFT_TARGET_CASES = [case for case in LOSS_CASES if case.id in SOFT_TARGET_IDS]

K_VALUES = [10, 100]
LOGIT_KINDS = ["random", "saturated"]


def make_batch(k, kind):
    """Deterministic float32 logits ``[N, K]`` and int labels ``[N]``.

    ``"saturated"`` puts one logit 30 above the row maximum on the first
    ``N_SAT_TRUE`` rows (at the label) and the next ``N_SAT_WRONG`` rows (at
    another class); the remaining rows keep their random logits.
    """
    rng = np.random.default_rng(1000 * k + LOGIT_KINDS.index(kind))
    z = rng.normal(0.0, 2.0, size=(N, k))
    y = rng.integers(0, k, size=N)
    if kind == "saturated":
        sat = y.copy()
        wrong = slice(N_SAT_TRUE, N_SAT_TRUE + N_SAT_WRONG)
        sat[wrong] = (y[wrong] + rng.integers(1, k, size=N_SAT_WRONG)) % k
        rows = np.arange(N_SAT_TRUE + N_SAT_WRONG)
        z[rows, sat[rows]] = z[rows].max(axis=-1) + 30.0
    return z.astype(np.float32), y.astype(np.int32)


def make_soft_targets(k, kind):
    """Deterministic float32 Dirichlet(1) target rows ``[N, K]``."""
    rng = np.random.default_rng(7 + 1000 * k + LOGIT_KINDS.index(kind))
    return rng.dirichlet(np.ones(k), size=N).astype(np.float32)


def one_hot(y, k):
    return np.eye(k, dtype=np.float32)[y]


def keras_value_and_grad(loss, y_true, logits):
    """Loss value and its gradient w.r.t. float32 logits, both as float64."""
    value, grad = value_and_gradient(lambda z: loss(y_true, z), logits)
    return float(value), np.asarray(grad, dtype=np.float64)


def assert_grad_close(grad, grad_ref):
    np.testing.assert_allclose(
        grad,
        grad_ref,
        rtol=GRAD_RTOL,
        atol=GRAD_ATOL_SCALE * np.abs(grad_ref).max(),
    )


@pytest.mark.parametrize("kind", LOGIT_KINDS)
@pytest.mark.parametrize("k", K_VALUES)
@pytest.mark.parametrize(("cls", "kwargs", "ref_fn"), LOSS_CASES)
def test_value_and_grad_match_reference(cls, kwargs, ref_fn, k, kind):
    logits, y = make_batch(k, kind)
    z = logits.astype(np.float64)
    t = one_hot(y, k).astype(np.float64)

    value, grad = keras_value_and_grad(cls(**kwargs), y, logits)

    np.testing.assert_allclose(value, ref_fn(z, z, t).mean(), rtol=VALUE_RTOL)
    assert_grad_close(grad, ref.fd_grad(ref_fn, z, t))


@pytest.mark.parametrize("kind", LOGIT_KINDS)
@pytest.mark.parametrize("k", K_VALUES)
@pytest.mark.parametrize(("cls", "kwargs", "ref_fn"), SOFT_TARGET_CASES)
def test_soft_targets_match_reference(cls, kwargs, ref_fn, k, kind):
    logits, _ = make_batch(k, kind)
    targets = make_soft_targets(k, kind)
    z = logits.astype(np.float64)
    t = targets.astype(np.float64)

    value, grad = keras_value_and_grad(cls(**kwargs), targets, logits)

    np.testing.assert_allclose(value, ref_fn(z, z, t).mean(), rtol=VALUE_RTOL)
    assert_grad_close(grad, ref.fd_grad(ref_fn, z, t))


@pytest.mark.parametrize("label_shape", ["flat", "column"])
@pytest.mark.parametrize("kind", LOGIT_KINDS)
@pytest.mark.parametrize(("cls", "kwargs", "ref_fn"), LOSS_CASES)
def test_sparse_labels_match_one_hot(cls, kwargs, ref_fn, kind, label_shape):
    del ref_fn
    k = 10
    logits, y = make_batch(k, kind)
    loss = cls(**kwargs)
    sparse = y if label_shape == "flat" else y[:, None]

    dense_value = float(loss(one_hot(y, k), logits))
    sparse_value = float(loss(sparse, logits))

    # Both paths are float32 on the same numbers; allow a few ulps.
    np.testing.assert_allclose(sparse_value, dense_value, rtol=1e-6)


# Checks of the reference against closed forms, independent of the package.


def _ref_batch(k, kind="random"):
    logits, y = make_batch(k, kind)
    return logits.astype(np.float64), one_hot(y, k).astype(np.float64), y


@pytest.mark.parametrize("k", K_VALUES)
def test_reference_fd_grad_of_cross_entropy_is_softmax_minus_target(k):
    z, t, _ = _ref_batch(k, "saturated")
    expected = (ref.softmax(z) - t) / N
    np.testing.assert_allclose(
        ref.fd_grad(ref.cross_entropy, z, t), expected, rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize("kind", LOGIT_KINDS)
@pytest.mark.parametrize("k", K_VALUES)
def test_reference_rce_is_scaled_one_minus_p_true(k, kind):
    z, t, y = _ref_batch(k, kind)
    p_true = ref.softmax(z)[np.arange(N), y]
    closed_form = -np.log(1e-4) * (1.0 - p_true)
    # Clipping p_k up to 1e-7 can add at most K * 1e-7 * ln(1e4) per row.
    bound = k * ref.PROB_CLIP * -np.log(1e-4)
    diff = ref.reverse_crossentropy(z, z, t) - closed_form
    assert np.all(diff >= -1e-12)
    assert np.all(diff <= bound)


@pytest.mark.parametrize("kind", LOGIT_KINDS)
@pytest.mark.parametrize("k", K_VALUES)
def test_reference_mae_is_half_l1_distance(k, kind):
    z, t, _ = _ref_batch(k, kind)
    half_l1 = 0.5 * np.abs(ref.softmax(z) - t).sum(axis=-1)
    np.testing.assert_allclose(
        ref.mean_absolute_error(z, z, t), half_l1, rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("k", K_VALUES)
def test_reference_normalized_losses_of_uniform_logits_are_one_over_k(k):
    z = np.full((N, k), 0.37)
    t = make_soft_targets(k, "random").astype(np.float64)
    t /= t.sum(axis=-1, keepdims=True)
    for fn in (ref.normalized_crossentropy, ref.normalized_focal_crossentropy):
        np.testing.assert_allclose(fn(z, z, t), 1.0 / k, rtol=1e-12)


@pytest.mark.parametrize("k", K_VALUES)
def test_reference_nfl_with_gamma_zero_is_nce(k):
    z, t, _ = _ref_batch(k)
    nfl0 = functools.partial(ref.normalized_focal_crossentropy, gamma=0.0)
    np.testing.assert_allclose(
        nfl0(z, z, t), ref.normalized_crossentropy(z, z, t), rtol=1e-12
    )
    np.testing.assert_allclose(
        ref.fd_grad(nfl0, z, t),
        ref.fd_grad(ref.normalized_crossentropy, z, t),
        rtol=1e-6,
        atol=1e-12,
    )


@pytest.mark.parametrize("k", K_VALUES)
def test_reference_nfl_gradient_holds_focal_weights_fixed(k):
    # With w fixed, d/dz of sum_k a_k (-log p_k) / sum_k w_k (-log p_k) where
    # a = t * w, using d(-log p_k)/dz = p - e_k.
    z, t, _ = _ref_batch(k)
    gamma = 2.0
    p = ref.softmax(z)
    w = (1.0 - p) ** gamma
    a = t * w
    nll = -ref.log_softmax(z)
    num = (a * nll).sum(axis=-1, keepdims=True)
    den = (w * nll).sum(axis=-1, keepdims=True)
    d_num = a.sum(axis=-1, keepdims=True) * p - a
    d_den = w.sum(axis=-1, keepdims=True) * p - w
    expected = (d_num * den - num * d_den) / den**2 / N
    nfl = functools.partial(ref.normalized_focal_crossentropy, gamma=gamma)
    np.testing.assert_allclose(ref.fd_grad(nfl, z, t), expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("k", K_VALUES)
def test_reference_gce_with_q_one_is_mae(k):
    # Random logits keep every p_k far above the 1e-7 clip.
    z, t, _ = _ref_batch(k)
    assert ref.softmax(z).min() > 10 * ref.PROB_CLIP
    np.testing.assert_allclose(
        ref.generalized_crossentropy(z, z, t, q=1.0),
        ref.mean_absolute_error(z, z, t),
        rtol=1e-12,
    )
