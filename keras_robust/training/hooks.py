"""The gradient hook: how the training step turns its loss into gradients."""

import keras

from keras_robust import backend
from keras_robust.validation import Configurable


@keras.saving.register_keras_serializable(package="keras_robust")
class GradientHook(Configurable):
    """Computes the loss and its gradients for one optimizer step.

    The default hook is the identity: it evaluates the objective's loss once
    and differentiates it (with the optimizer's loss scaling, for mixed
    precision). A method that changes how the gradient is taken (AWP
    perturbs the weights, evaluates the loss there and restores them)
    subclasses it and overrides `__call__`; the rest of the step stays as
    it is.

    Call signature: `hook(model, loss_fn, variables) -> (loss, outputs,
    gradients)`, where `loss_fn()` returns `(loss, outputs)` with `loss` a
    float32 scalar, and the gradients are those of `loss` with respect to
    `variables` (unscaled by the optimizer later, in `optimizer.apply`).
    """

    def __call__(self, model, loss_fn, variables):
        return backend.loss_and_gradients(
            loss_fn, variables, scale=model.optimizer.scale_loss
        )
