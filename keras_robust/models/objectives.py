"""Per-example terms of the TRADES and MART objectives, in float32."""

from keras import ops

from keras_robust.backend import scale_loss_for_distribution


def kl_from_logits(clean_logits, adv_logits):
    """Per-example `KL(softmax(clean) || softmax(adv))`, exact log-softmax."""
    clean_log_probs = ops.log_softmax(clean_logits, axis=-1)
    adv_log_probs = ops.log_softmax(adv_logits, axis=-1)
    return ops.sum(
        ops.exp(clean_log_probs) * (clean_log_probs - adv_log_probs), axis=-1
    )


def mart_regularizer(targets, clean_logits, adv_logits, beta):
    """MART's terms besides the adversarial cross-entropy, per example.

    `-log(1.0001 - max_{k != y} p_k(x') + 1e-12)
    + beta * KL(p(x) || p(x')) * (1.0000001 - p_y(x))` with the constants of
    the reference code (Wang et al. 2020); in the KL term the adversarial
    probabilities are offset by 1e-12 inside the logarithm, as there.
    """
    num_classes = adv_logits.shape[-1]
    labels = ops.argmax(targets, axis=-1)
    adv_probs = ops.softmax(adv_logits, axis=-1)
    clean_probs = ops.softmax(clean_logits, axis=-1)
    true_mask = ops.one_hot(labels, num_classes, dtype="float32")
    # The most likely wrong class under the adversarial example.
    runner_up = ops.argmax(adv_probs - 2.0 * true_mask, axis=-1)
    runner_up_prob = ops.sum(
        adv_probs * ops.one_hot(runner_up, num_classes, dtype="float32"), axis=-1
    )
    margin = -ops.log(1.0001 - runner_up_prob + 1e-12)
    kl = ops.sum(
        clean_probs * (ops.log(clean_probs + 1e-30) - ops.log(adv_probs + 1e-12)),
        axis=-1,
    )
    p_true = ops.sum(clean_probs * true_mask, axis=-1)
    return margin + beta * kl * (1.0000001 - p_true)


def batch_mean(values, sample_weight=None):
    """`sum(w * values) / batch_size`, scaled for `tf.distribute` like Keras."""
    values = ops.cast(values, "float32")
    if sample_weight is not None:
        values = values * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    mean = ops.sum(values) / ops.cast(ops.shape(values)[0], "float32")
    return scale_loss_for_distribution(mean)
