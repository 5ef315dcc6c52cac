"""Plumbing between a custom training step and Keras's TensorFlow trainer.

Most of it works around one upstream limitation and names it:
keras-team/keras#20585 (under `MultiWorkerMirroredStrategy`, Keras's
symbolic build reduces the first batch across replicas, and its log
reduction concatenates along axis 0, which scalars lack). The private
names used below, and the loss tracker found by name, are confined to
this module.
"""

import tensorflow as tf
from keras import ops

from keras_robust.backend.tensorflow.gradients import unscale_loss_for_distribution


def in_multi_worker_mode():
    """Whether the current strategy spans several workers (processes)."""
    extended = tf.distribute.get_strategy().extended
    # TensorFlow offers no public query; Keras itself reads this method.
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def first_local_value(strategy, value):
    """The first local replica's part of a (nested) distributed value."""

    def local(item):
        if isinstance(item, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(item)[0]
        return item

    return tf.nest.map_structure(local, value)


def distribution_safe_logs(logs):
    """Logs that Keras can average across workers (keras-team/keras#20585).

    Across workers Keras reduces the logs along axis 0, which scalars lack:
    in multi-worker mode each value gets one axis of length one, so the
    reduction averages over replicas. Elsewhere the logs are unchanged.
    """
    if not in_multi_worker_mode():
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def update_loss_metric(model, loss, batch_size):
    """Adds a step's loss to the `loss` that `fit()`/`evaluate()` report.

    Keras creates its loss tracker in `compile()` and exposes it only as the
    metric named "loss" in `model.metrics` (the pattern of keras.io's
    custom `train_step` guide); its attribute (`_loss_tracker`) is private.
    A tracker of our own named "loss" would appear twice in
    `metrics_names` and shift `evaluate()`'s list of results.

    Args:
        model: The compiled Keras model.
        loss: The step's scalar loss, as scaled per replica by Keras losses.
        batch_size: The number of examples, the weight of this update.
    """
    for metric in model.metrics:
        if metric.name == "loss":
            metric.update_state(
                unscale_loss_for_distribution(loss), sample_weight=batch_size
            )


_DISTRIBUTED_STRATEGIES = (
    tf.distribute.MirroredStrategy,
    tf.distribute.MultiWorkerMirroredStrategy,
)


class MultiWorkerBuildMixin:
    """Builds a model from one local replica's batch (keras-team/keras#20585).

    Keras reduces the first (nested) batch across replicas before its
    symbolic build, which `MultiWorkerMirroredStrategy` rejects. The build
    needs only shapes, so this hands it one local replica's batch instead.
    Overrides the private `Trainer._maybe_symbolic_build` until upstream
    fixes the reduction.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        distributed = isinstance(strategy, _DISTRIBUTED_STRATEGIES)
        if iterator is not None and distributed:
            for _, _, batches in iterator:
                data_batch = first_local_value(strategy, next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


class TrainerMixin(MultiWorkerBuildMixin):
    """Keras's `train_step(data)`/`test_step(data)`, run on the variables.

    A model defines its steps once, as `_train_step(data)` and
    `_test_step(data)`, which read and assign its variables. TensorFlow's
    trainer calls them as they are (inside its `tf.function`); the JAX
    backend's mixin of the same name runs them on the trainer's state.
    """

    def train_step(self, data):
        return self._train_step(data)

    def test_step(self, data):
        return self._test_step(data)
