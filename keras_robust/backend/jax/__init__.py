"""The JAX backend's mechanics: the names of the TensorFlow backend's."""

from keras_robust.backend.common import NAMES
from keras_robust.backend.jax import random  # noqa: F401
from keras_robust.backend.jax.checks import check_labels_in_range, concrete_values  # noqa: F401
from keras_robust.backend.jax.gradients import (  # noqa: F401 (re-exported: NAMES)
    apply_gradients,
    check_in_value_range,
    compile_batch_function,
    compile_function,
    creation_scope,
    fori_loop,
    in_xla_context,
    loss_and_gradients,
    num_replicas_in_sync,
    output_shape,
    padded_batches,
    scale_loss_for_distribution,
    unscale_loss_for_distribution,
    value_and_input_gradient,
    value_and_input_vjp,
    while_loop,
)
from keras_robust.backend.jax.normalization import (  # noqa: F401 (re-exported: NAMES)
    can_fuse_batch_norm,
    fused_batch_norm,
)
from keras_robust.backend.jax.selection import gather, select  # noqa: F401
from keras_robust.backend.jax.trainer import (  # noqa: F401 (re-exported: NAMES)
    TrainerMixin,
    distribution_safe_logs,
    first_local_value,
    in_multi_worker_mode,
    update_loss_metric,
)

__all__ = list(NAMES)
