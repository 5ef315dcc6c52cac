"""The TensorFlow backend's mechanics (the modules beside this one)."""

from keras_robust.backend import random
from keras_robust.backend.checks import check_labels_in_range, concrete_values
from keras_robust.backend.gradients import (
    check_in_value_range,
    compile_batch_function,
    compile_function,
    creation_scope,
    fori_loop,
    in_xla_context,
    loss_and_gradients,
    num_replicas_in_sync,
    scale_loss_for_distribution,
    unscale_loss_for_distribution,
    value_and_input_gradient,
    value_and_input_vjp,
    while_loop,
)
from keras_robust.backend.normalization import can_fuse_batch_norm, fused_batch_norm
from keras_robust.backend.selection import gather, select
from keras_robust.backend.trainer import (
    MultiWorkerBuildMixin,
    TrainerMixin,
    distribution_safe_logs,
    first_local_value,
    in_multi_worker_mode,
    update_loss_metric,
)

__all__ = [
    "can_fuse_batch_norm",
    "fused_batch_norm",
    "MultiWorkerBuildMixin",
    "TrainerMixin",
    "check_in_value_range",
    "check_labels_in_range",
    "compile_batch_function",
    "compile_function",
    "concrete_values",
    "creation_scope",
    "distribution_safe_logs",
    "first_local_value",
    "fori_loop",
    "gather",
    "in_multi_worker_mode",
    "in_xla_context",
    "loss_and_gradients",
    "num_replicas_in_sync",
    "random",
    "scale_loss_for_distribution",
    "select",
    "unscale_loss_for_distribution",
    "update_loss_metric",
    "value_and_input_gradient",
    "value_and_input_vjp",
    "while_loop",
]
