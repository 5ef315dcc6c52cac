"""Input gradients, weight gradients and compiled functions on JAX.

Keras's JAX trainer runs a step on its variables' values inside a
`keras.StatelessScope`, where reading a variable gives its mapped value
and assigning it records the new value. A JAX transformation
(`jax.vjp`, `jax.value_and_grad`) needs a pure function, so
`stateful_function` runs code that reads and assigns variables in a scope
of its own, seeded with the enclosing scope's values, and returns the
values it assigned; the caller assigns them after the transformation.
BatchNormalization's moving statistics, updated by the forward passes of
an attack in train mode, reach the step's state that way, as they do on
TensorFlow.
"""

import contextlib
import contextvars

import jax
import keras
import numpy as np
from jax import numpy as jnp
from keras import ops
from keras.src.backend.common.stateless_scope import get_stateless_scope

from keras_robust.backend.common import check_range_values
from keras_robust.backend.jax.checks import concrete_values


class RecordingScope(keras.StatelessScope):
    """A `keras.StatelessScope` that also keeps the variables assigned in it.

    Args:
        overrides: `(variable, value)` pairs read inside the scope.
        inherit: Whether variables not in `overrides` read their values from
            the enclosing stateless scope (if any), not from storage.
    """

    def __init__(self, overrides=(), inherit=True):
        super().__init__(initialize_variables=False)
        parent = get_stateless_scope() if inherit else None
        if parent is not None:
            self.state_mapping.update(parent.state_mapping)
        for variable, value in overrides:
            self.state_mapping[id(variable)] = value
        self.assigned = {}

    def add_update(self, update):
        variable, _ = update
        self.assigned[id(variable)] = variable
        super().add_update(update)

    def updates(self):
        """The `(variable, value)` pairs assigned in the scope, in order."""
        return [
            (variable, self.state_mapping[key])
            for key, variable in self.assigned.items()
        ]


def stateful_function(fn, variables=()):
    """`fn(*args)` as a pure function of `(values, *args)` for JAX.

    The returned function runs `fn` in a `RecordingScope` where
    `variables` read `values`, and returns `(outputs, assigned)`:
    `assigned` holds the values `fn` assigned to any variable (of
    `variables` or not), and `returned.assigned_variables` (set when it
    runs) names them, in order.
    """

    def pure(values, *args):
        with RecordingScope(zip(variables, values, strict=True)) as scope:
            outputs = fn(*args)
        updates = scope.updates()
        pure.assigned_variables = [v for v, _ in updates]
        return outputs, [value for _, value in updates]

    pure.assigned_variables = []
    return pure


def _assign(variables, values):
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def value_and_input_gradient(loss_fn, x):
    """Evaluates `loss_fn(x)` and the gradient of its sum with respect to `x`.

    Args:
        loss_fn: Callable mapping a batch `x` to per-example losses `[N]`.
        x: Input batch (a float array).

    Returns:
        `(losses, gradient)`, the gradient having the shape of `x`; no
        gradient flows back from either.
    """
    return value_and_input_vjp(
        loss_fn, lambda losses: (losses, jnp.ones_like(losses)), x
    )


def value_and_input_vjp(fn, head, x):
    """Input gradient of a loss whose derivative by `fn`'s outputs is known.

    `values, output_gradient = head(fn(x))`, where `output_gradient` is the
    gradient of the summed loss with respect to the outputs of `fn` (e.g. a
    model's logits), written out in closed form. Only `fn` is
    differentiated: the backward pass is the vector-Jacobian product of
    `output_gradient` with `fn` at `x`; no weight gradient is computed.

    Returns:
        `(values, gradient)`, the gradient having the shape of `x`; no
        gradient flows back from either.
    """
    pure = stateful_function(fn)
    x = jax.lax.stop_gradient(x)
    outputs, vjp, assigned = jax.vjp(lambda inputs: pure((), inputs), x, has_aux=True)
    _assign(pure.assigned_variables, assigned)
    values, output_gradient = head(jax.lax.stop_gradient(outputs))
    (gradient,) = vjp(jnp.asarray(output_gradient, dtype=outputs.dtype))
    return (
        jax.tree_util.tree_map(jax.lax.stop_gradient, values),
        jax.lax.stop_gradient(gradient),
    )


def loss_and_gradients(loss_fn, variables, scale=None):
    """Evaluates `loss_fn()` and the gradients of its loss by `variables`.

    Args:
        loss_fn: Callable of no arguments returning `(loss, outputs)`, a
            scalar loss and any structure of arrays.
        variables: The variables to differentiate by.
        scale: Optional callable applied to the loss before differentiating
            (an optimizer's `scale_loss`, for mixed precision).

    Returns:
        `(loss, outputs, gradients)`, one gradient per variable. Variables
        that `loss_fn` assigns (BatchNormalization's moving statistics) are
        assigned their new values.
    """
    variables = list(variables)

    def scaled(values):
        (loss, outputs), assigned = pure(values)
        scaled_loss = loss if scale is None else scale(loss)
        return scaled_loss, (loss, outputs, assigned)

    pure = stateful_function(loss_fn, variables)
    values = [_current_value(variable) for variable in variables]
    (_, (loss, outputs, assigned)), gradients = jax.value_and_grad(
        scaled, has_aux=True
    )(values)
    _assign(pure.assigned_variables, assigned)
    return loss, outputs, gradients


def apply_gradients(optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)`, through `stateless_apply`.

    An optimizer's stateful `apply` may assign variables inside a
    conditional (`LossScaleOptimizer` skips a step whose gradients are not
    finite), which a JAX trace cannot do; its `stateless_apply`, what
    Keras's own JAX step calls, returns the new values instead.
    """
    variables = list(variables)
    optimizer_values = [_current_value(v) for v in optimizer.variables]
    values = [_current_value(v) for v in variables]
    new_values, new_optimizer_values = optimizer.stateless_apply(
        optimizer_values, gradients, values
    )
    _assign(variables, new_values)
    _assign(optimizer.variables, new_optimizer_values)


def check_in_value_range(x, value_range, name="x"):
    """Checks that inputs are finite and inside `value_range` (a small tolerance).

    With concrete values a violation raises `ValueError`. A traced function
    has no assertion that could fail it (as under TensorFlow's XLA), so
    traced inputs pass unchecked.

    Returns:
        `x`.
    """
    values = concrete_values(x)
    if values is not None:
        check_range_values(values, value_range, name)
    return x


def in_xla_context():
    """`True`: JAX compiles every function with XLA (shapes fixed)."""
    return True


def compile_function(fn, jit_compile=False):
    """Compiling a function of the model's variables needs them as arguments.

    Not available on JAX: a `jax.jit` of `fn` would bake the variables'
    current values into it.
    """
    raise NotImplementedError(
        "compile_function runs on the TensorFlow backend only. Received: "
        "keras.backend.backend()='jax'"
    )


# The batch size of the enclosing `padded_batches` scope, if any.
_PADDED_TO = contextvars.ContextVar("padded_to", default=None)


def _power_of_two(count):
    return 1 << max(count - 1, 0).bit_length()


@contextlib.contextmanager
def padded_batches(batch_size, count):
    """Within it, batches of at most `batch_size` examples run at one size.

    An attack called on `count` examples in batches of `batch_size` runs
    batches of every size up to `batch_size`: the last, partial one, and
    APGD-T's examples still robust for its next target class. Within this
    scope the batch functions compiled with `independent_examples=True`
    pad each of them to `min(batch_size, count rounded up to a power of
    two)`, so they run one compiled program. An enclosing scope's size
    wins, so the attacks of one evaluation, each on fewer examples than
    the last, share the evaluation's size.
    """
    if _PADDED_TO.get() is not None:
        yield
        return
    token = _PADDED_TO.set(min(batch_size, _power_of_two(count)))
    try:
        yield
    finally:
        _PADDED_TO.reset(token)


def padded_size(count):
    """The size a batch of `count` independent examples runs at.

    The enclosing `padded_batches` scope's size if it holds `count`
    examples, else `count` rounded up to a power of two.
    """
    size = _PADDED_TO.get()
    return size if size is not None and count <= size else _power_of_two(count)


def output_shape(fn, x):
    """The shape of `fn(x)`, found by tracing `fn` abstractly (`jax.eval_shape`).

    Nothing runs or compiles: called eagerly, a model compiles each of its
    operations for every new input shape (about 0.3 s for a small MLP at a
    batch of one). What `fn` assigns (a seed generator's state) is dropped.
    """
    with keras.StatelessScope():
        result = jax.eval_shape(fn, jax.ShapeDtypeStruct(np.shape(x), x.dtype))
    return tuple(result.shape)


def compile_batch_function(
    fn, *examples, scalars=None, variables=(), independent_examples=False
):
    """Compiles `fn(*batches)` with `jax.jit`, on the current `variables`.

    The variables `fn` reads (a model's weights, a seed generator's state)
    are arguments of the compiled function, so later training is seen and
    nothing is retraced; the values `fn` assigns are assigned after each
    call. `scalars`: `None`, or the number of float32 scalars `fn` takes
    after the batches, as a list (new values do not trace again).

    XLA compiles each batch size on its own, and the attacks call the
    function on batches of any size (the last of an input, the examples
    APGD-T's next target class still attacks). With
    `independent_examples=True` (each example's outputs depend on that
    example alone: an attack on a model in inference mode, not one whose
    batch normalisation uses the batch's statistics), a batch of `n`
    examples runs padded to `padded_size(n)` (the size of the enclosing
    `padded_batches` scope, else the next power of two), with copies of its
    last example, and the outputs are cut back to `n`. Every output must
    then have the batch dimension first. The results for `n` examples
    depend on `n` and the scope's size only, not on what ran before.

    The returned function's `experimental_get_tracing_count()` says how
    often it was traced, like a `tf.function`'s.
    """
    variables = list(variables)
    pure = stateful_function(fn, variables)
    traces = []

    def traced(*args):
        # Runs only while jax.jit traces.
        traces.append(None)
        return pure(*args)

    compiled = jax.jit(traced)
    dtypes = [example.dtype for example in examples]

    def call(*args):
        # Cast by NumPy: int64 labels become JAX's int32 without a warning.
        batches = [np.asarray(a, dtype=d) for a, d in zip(args, dtypes, strict=False)]
        count = len(batches[0])
        padding = padded_size(count) - count if independent_examples else 0
        if padding:
            batches = [
                np.concatenate([batch, np.repeat(batch[-1:], padding, axis=0)])
                for batch in batches
            ]
        batches = [jnp.asarray(batch) for batch in batches]
        rest = list(args[len(dtypes) :])
        if scalars is not None:
            rest = [[jnp.asarray(s, jnp.float32) for s in rest[0]]]
        values = [variable.value for variable in variables]
        outputs, assigned = compiled(values, *batches, *rest)
        _assign(pure.assigned_variables, assigned)
        if padding:
            # Cut on the host: slicing a JAX array compiles a program for
            # each new `count`.
            outputs = jax.tree_util.tree_map(
                lambda output: np.asarray(output)[:count], outputs
            )
        return outputs

    call.experimental_get_tracing_count = lambda: len(traces)
    return call


def num_replicas_in_sync():
    """1: JAX distributes within one program (keras.distribution)."""
    return 1


def scale_loss_for_distribution(loss):
    """The loss: no per-replica scaling on JAX."""
    return loss


def unscale_loss_for_distribution(loss):
    """The loss: no per-replica scaling on JAX."""
    return loss


def creation_scope(model):
    """No scope is needed to create a model's variables on JAX."""
    return contextlib.nullcontext()


def _current_value(variable):
    """The value `variable` reads now: the enclosing scope's, or its own."""
    scope = get_stateless_scope()
    value = None if scope is None else scope.get_current_value(variable)
    return variable.value if value is None else value


def _assigned_by(fn):
    """The variables `fn()` assigns, found by tracing it once abstractly."""
    assigned = {}

    def probe():
        with RecordingScope() as scope:
            fn()
        assigned.update(scope.assigned)

    jax.eval_shape(probe)
    return list(assigned.values())


def _run_on_values(fn, variables, values):
    """`fn()` with `variables` reading `values`; `(output, their new values)`."""
    with RecordingScope(zip(variables, values, strict=True)) as scope:
        output = fn()
    known = {id(variable) for variable in variables}
    stray = [v.path for v in scope.assigned.values() if id(v) not in known]
    if stray:
        raise RuntimeError(
            "A loop body assigned variables it did not assign when first "
            f"traced. Received: assignments to {stray}"
        )
    return output, [scope.get_current_value(variable) for variable in variables]


def fori_loop(lower, upper, body, init_val):
    """`keras.ops.fori_loop` whose body may assign variables.

    A JAX loop cannot assign a variable from inside (the value would leak
    out of the loop's trace): the variables the body assigns (such as
    BatchNormalization's moving statistics, in an attack run in train mode)
    are carried through the loop and assigned once it ends.
    """
    variables = _assigned_by(lambda: body(lower, init_val))
    if not variables:
        return ops.fori_loop(lower, upper, body, init_val)

    def carried(i, state):
        value, values = state
        return _run_on_values(lambda: body(i, value), variables, values)

    values = [_current_value(variable) for variable in variables]
    value, values = ops.fori_loop(lower, upper, carried, (init_val, values))
    _assign(variables, values)
    return value


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """`keras.ops.while_loop` whose body may assign variables (see
    `fori_loop`)."""
    is_tuple = isinstance(loop_vars, (tuple, list))
    initial = tuple(loop_vars) if is_tuple else (loop_vars,)
    variables = _assigned_by(lambda: body(*initial))
    if not variables:
        return ops.while_loop(cond, body, loop_vars, maximum_iterations)

    def carried_cond(*args):
        *state, values = args
        return _run_on_values(lambda: cond(*state), variables, values)[0]

    def carried_body(*args):
        *state, values = args
        outputs, values = _run_on_values(lambda: body(*state), variables, values)
        outputs = tuple(outputs) if is_tuple else (outputs,)
        return (*outputs, values)

    values = [_current_value(variable) for variable in variables]
    *outputs, values = ops.while_loop(
        carried_cond, carried_body, (*initial, values), maximum_iterations
    )
    _assign(variables, values)
    return tuple(outputs) if is_tuple else outputs[0]
