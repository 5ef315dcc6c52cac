"""Input gradients and step plumbing for attacks and training steps."""

import contextlib
import functools

import tensorflow as tf
from keras import ops

from keras_robust.backend.common import (
    RANGE_ADVICE,
    check_range_values,
    range_tolerance,
)
from keras_robust.backend.tensorflow.checks import concrete_values


def value_and_input_gradient(loss_fn, x):
    """Evaluates `loss_fn(x)` and the gradient of its sum with respect to `x`.

    Args:
        loss_fn: Callable mapping a batch `x` to per-example losses `[N]`.
        x: Input batch (a float tensor).

    Returns:
        `(losses, gradient)`, the gradient having the shape of `x`; no
        gradient flows back from either into the caller's tape.
    """
    # The gradient of the sum is the vector-Jacobian product with ones.
    return value_and_input_vjp(
        loss_fn, lambda losses: (losses, tf.ones_like(losses)), x
    )


def value_and_input_vjp(fn, head, x):
    """Input gradient of a loss whose derivative by `fn`'s outputs is known.

    `values, output_gradient = head(fn(x))`, where `output_gradient` is the
    gradient of the summed loss with respect to the outputs of `fn` (e.g. a
    model's logits), written out in closed form. The tape differentiates
    `fn` alone: the backward pass is the vector-Jacobian product of
    `output_gradient` with `fn` at `x`, without the loss's own backward
    operations (in an attack's loop, the larger part of a small model's).

    Args:
        fn: Callable mapping a batch `x` to outputs (a float tensor).
        head: Callable mapping the outputs (carrying no gradient) to
            `(values, output_gradient)`, any structure of values and a
            tensor of the outputs' shape and dtype.
        x: Input batch (a float tensor).

    Returns:
        `(values, gradient)`, the gradient having the shape of `x`; no
        gradient flows back from either into the caller's tape.
    """
    x = tf.stop_gradient(x)
    # Only `x` is watched: the model's variables are not recorded, so no
    # pass computes weight gradients (eagerly either, where nothing prunes
    # them).
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        outputs = fn(x)
    values, output_gradient = head(tf.stop_gradient(outputs))
    gradient = tape.gradient(outputs, x, output_gradients=output_gradient)
    if gradient is None:
        gradient = tf.zeros_like(x)
    return tf.nest.map_structure(tf.stop_gradient, values), tf.stop_gradient(gradient)


def padded_batches(batch_size, count):
    """No padding: a graph function runs batches of any size from one trace.

    (On JAX, batches in this scope run padded to one size; see there.)
    """
    del batch_size, count
    return contextlib.nullcontext()


def num_replicas_in_sync():
    """Number of replicas of the current `tf.distribute` strategy (1 if none)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def unscale_loss_for_distribution(loss):
    """Undoes the `1 / num_replicas` scaling Keras losses apply per replica."""
    replicas = num_replicas_in_sync()
    return loss if replicas == 1 else loss * tf.cast(replicas, loss.dtype)


def check_in_value_range(x, value_range, name="x"):
    """Checks that inputs are finite and inside `value_range` (a small tolerance).

    Eagerly a violation raises `ValueError`, saying whether values are NaN
    (or infinite) or outside the range; inside a compiled function the
    check is one cheap assertion op that fails the step with the same
    message (`InvalidArgumentError`). XLA (`jit_compile=True`) drops
    assertions.

    Returns:
        `x`, carrying the check as a control dependency in graph mode.
    """
    low, high = value_range
    tolerance = range_tolerance(value_range)
    values = concrete_values(x)
    if values is not None:
        check_range_values(values, value_range, name)
        return x
    lowest, highest = tf.reduce_min(x), tf.reduce_max(x)
    valid = tf.logical_and(
        tf.reduce_all(tf.math.is_finite(x)),
        tf.logical_and(lowest >= low - tolerance, highest <= high + tolerance),
    )
    message = (
        f"Argument `{name}` must hold finite values inside value_range=({low}, "
        f"{high}); NaN shows as nan below. {RANGE_ADVICE}"
    )
    assertion = tf.debugging.Assert(
        valid, [message, "Received min/max:", lowest, highest]
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(x)


def in_xla_context():
    """Whether the code being traced will be compiled by XLA.

    True inside a `tf.function(jit_compile=True)` (as Keras's train and test
    functions are with `jit_compile=True`) and in functions nested in one;
    XLA needs every shape fixed at compile time.
    """
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph()
    )


def compile_function(fn, jit_compile=False):
    """Compiles `fn` into a graph function (XLA with `jit_compile=True`)."""
    return tf.function(fn, jit_compile=jit_compile, reduce_retracing=True)


def output_shape(fn, x):
    """The shape of `fn(x)`, for a small batch `x` (a shape query).

    Runs `fn` eagerly: TensorFlow runs each operation's kernel directly,
    and a batch of one costs milliseconds (the JAX backend traces `fn`
    abstractly instead).
    """
    return tuple(fn(x).shape)


def compile_batch_function(
    fn, *examples, scalars=None, variables=(), independent_examples=False
):
    """Compiles `fn(*batches)` once for any batch size.

    Args:
        fn: The function of batched arrays.
        *examples: One NumPy array per argument; their shapes past the batch
            axis and their dtypes fix the signature.
        scalars: `None`, or a number `n`: `fn` then takes, after the
            batches, a list of `n` float32 scalars, given as tensors (new
            values do not trace again).
        variables: The variables `fn` reads and assigns. A graph function
            reads them where they are, so TensorFlow needs no list (the JAX
            backend passes their values as arguments).
        independent_examples: Whether each example's outputs depend on that
            example alone (on JAX, batches are then padded to fewer sizes;
            ignored here).

    Returns:
        A graph function traced once, whatever the batch size (a partial
        last batch does not trace again).
    """
    signature = [
        tf.TensorSpec((None, *example.shape[1:]), example.dtype) for example in examples
    ]
    if scalars is not None:
        signature.append([tf.TensorSpec((), tf.float32)] * scalars)
    # TensorFlow counts traces per code object and warns of "retracing" when
    # one code object is traced often, as happens when each attack (each
    # model, class and settings) gets its own function built from the same
    # closure, each traced once. A partial has no code object: each compiled
    # function is counted on its own, and real retracing still warns.
    # Without autograph: the attacks' control flow is explicit (keras.ops
    # loops, Python branches on Python values), and converting their code
    # tripled the first call's time (APGD-CE on a digits MLP: 3.3 s → 0.6 s).
    # A model's own `call` is not converted either way (Keras is not).
    return tf.function(
        functools.partial(fn), input_signature=signature, autograph=False
    )


def scale_loss_for_distribution(loss):
    """Scales a batch-mean loss by `1 / num_replicas`, as Keras losses do."""
    replicas = num_replicas_in_sync()
    return loss if replicas == 1 else loss / tf.cast(replicas, loss.dtype)


def loss_and_gradients(loss_fn, variables, scale=None):
    """Evaluates `loss_fn()` and the gradients of its loss by `variables`.

    Args:
        loss_fn: Callable of no arguments returning `(loss, outputs)`, a
            scalar loss and any structure of tensors.
        variables: The variables to differentiate by.
        scale: Optional callable applied to the loss before differentiating
            (an optimizer's `scale_loss`, for mixed precision).

    Returns:
        `(loss, outputs, gradients)`, one gradient per variable (`None`
        where the loss does not depend on it).
    """
    with tf.GradientTape() as tape:
        loss, outputs = loss_fn()
        scaled_loss = loss if scale is None else scale(loss)
    return loss, outputs, tape.gradient(scaled_loss, variables)


def creation_scope(model):
    """The scope in which to create variables that belong to `model`."""
    return model.distribute_strategy.scope()


def apply_gradients(optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)` (the JAX backend goes through
    the optimizer's `stateless_apply`)."""
    optimizer.apply(gradients, variables)


def fori_loop(lower, upper, body, init_val):
    """`keras.ops.fori_loop` (a body that assigns variables needs nothing
    more on TensorFlow; the JAX backend carries them through the loop)."""
    return ops.fori_loop(lower, upper, body, init_val)


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """`keras.ops.while_loop` (see `fori_loop`)."""
    return ops.while_loop(cond, body, loop_vars, maximum_iterations)
