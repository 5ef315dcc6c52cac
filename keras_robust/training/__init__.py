"""The roles of `AdversarialModel`'s training step, one small object each.

`AdversarialModel.train_step` is one skeleton (see docs/training.md):

```
batch    = Batch(x, y, sample_weight, step, horizon)
targets, logs = targets.before_attack(batch, teacher)
x_adv    = attack.perturb(forward(attack_mode), x, targets,
                          loss_fn=objective.attack_loss(...),
                          start=objective.attack_start(...), seed=...)
targets  = targets.after_attack(batch, x_adv, targets, teacher)
loss, out, grads = gradient_hook(model, lambda: objective.loss(...), weights)
optimizer.apply(grads); teacher.update(student); step += 1
```

Each role is configured once and chosen by type, never by the step:

- objectives (`Madry`, `TRADES`, `MART`, `Distillation`): the attack's loss, start and
  mode, and the training loss;
- targets (`Labels`, `ADRTargets`): what the model is trained toward;
- teachers (`EMA`, `FixedTeacher`): a second network, tracked with the
  model's weights;
- the gradient hook (`GradientHook`): how the loss becomes gradients.

Adding a method means adding one class of one role.
"""

from keras_robust.training.batch import Batch, active_model
from keras_robust.training.hooks import GradientHook
from keras_robust.training.objectives import (
    MART,
    TRADES,
    Distillation,
    Madry,
    Objective,
    ObjectiveOutput,
    RegularizedObjective,
    batch_mean,
)
from keras_robust.training.targets import ADRTargets, Labels, Targets, adr_targets
from keras_robust.training.teachers import EMA, FixedTeacher, Teacher

__all__ = [
    "ADRTargets",
    "Batch",
    "Distillation",
    "EMA",
    "FixedTeacher",
    "GradientHook",
    "Labels",
    "MART",
    "Madry",
    "Objective",
    "ObjectiveOutput",
    "RegularizedObjective",
    "TRADES",
    "Targets",
    "Teacher",
    "active_model",
    "adr_targets",
    "batch_mean",
]
