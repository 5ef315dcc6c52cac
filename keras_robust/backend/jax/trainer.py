"""Plumbing between the model's training step and Keras's JAX trainer."""

from keras_robust.backend.jax.gradients import RecordingScope


def in_multi_worker_mode():
    """`False`: JAX distributes within one program (keras.distribution)."""
    return False


def first_local_value(strategy, value):
    """`value`: JAX has no per-replica values."""
    return value


def distribution_safe_logs(logs):
    """The logs, unchanged."""
    return logs


def update_loss_metric(model, loss, batch_size):
    """Adds a step's loss to the `loss` that `fit()`/`evaluate()` report.

    See the TensorFlow backend's function of the same name.
    """
    for metric in model.metrics:
        if metric.name == "loss":
            metric.update_state(loss, sample_weight=batch_size)


class TrainerMixin:
    """Keras's JAX `train_step(state, data)`, from a step on the variables.

    A model defines its steps once, as `_train_step(data)` and
    `_test_step(data)`, which read and assign its variables. Keras's JAX
    trainer passes the variables' values (`state`) and expects their new
    values back: the step runs in a stateless scope that maps the model's
    variables to `state` and records what it assigns.
    """

    def train_step(self, state, data):
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )
        return _run_on_state(groups, state, lambda: self._train_step(data))

    def test_step(self, state, data):
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.metrics_variables,
        )
        return _run_on_state(groups, state, lambda: self._test_step(data))


def _run_on_state(groups, state, step):
    """Runs `step()` on `state`; `(its outputs, the new state)`.

    Raises:
        RuntimeError: If the step assigned a variable outside `groups`: its
            new value would be lost after the step.
    """
    pairs = [
        (variable, value)
        for variables, values in zip(groups, state, strict=True)
        for variable, value in zip(variables, values, strict=True)
    ]
    with RecordingScope(pairs, inherit=False) as scope:
        outputs = step()
    known = {id(variable) for variable, _ in pairs}
    lost = [v.path for v, _ in scope.updates() if id(v) not in known]
    if lost:
        raise RuntimeError(
            "The training step assigned variables that are not part of the "
            "model's state, so their new values would be lost on the JAX "
            f"backend. Track them on the model (as attributes of a layer). "
            f"Received: assignments to {lost}"
        )
    new_state = tuple(
        [scope.get_current_value(variable) for variable in variables]
        for variables in groups
    )
    return outputs, new_state
