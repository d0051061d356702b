"""What both trainers share: state, optimiser, loss, metrics, L2 selection."""

from typing import Any

from clu import metrics as clu_metrics
import flax
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
  """Everything a training run carries from step to step, as one pytree."""

  step: jax.Array
  params: Any
  opt_state: Any
  key: jax.Array
  batch_stats: Any = None  # Stand-alone models only: BN running averages.


@flax.struct.dataclass
class TrainMetrics(clu_metrics.Collection):
  loss: clu_metrics.Average.from_output('loss')
  l2: clu_metrics.Average.from_output('l2')
  accuracy: clu_metrics.Accuracy


_SCHEDULES = {
    'cosine': lambda lr, steps: optax.cosine_decay_schedule(lr, steps),
    'linear': lambda lr, steps: optax.linear_schedule(lr, 0.0, steps),
    'constant': lambda lr, steps: optax.constant_schedule(lr),
}


def learning_rate(section, field: str) -> optax.Schedule:
  """Peak rate scaled linearly with the batch size, optional warm-up, then the decay."""
  if section.lr_schedule not in _SCHEDULES:
    raise ValueError(
        f"{field}.lr_schedule: unknown {section.lr_schedule!r}; known: {', '.join(_SCHEDULES)}"
    )
  peak = section.learning_rate * section.batch_size / section.lr_reference_batch_size
  warmup = section.get('warmup_steps', 0)
  decay = _SCHEDULES[section.lr_schedule](peak, max(section.num_steps - warmup, 1))
  if not warmup:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def optimizer(section, field: str) -> optax.GradientTransformation:
  """SGD with Nesterov momentum (the paper's); L2 is part of the loss, not of optax."""
  return optax.sgd(
      learning_rate(section, field), momentum=section.momentum, nesterov=section.nesterov
  )


def apply_gradients(
    state: TrainState, grads: Any, tx: optax.GradientTransformation, **replace: Any
) -> TrainState:
  """The optimiser's update applied to params, step + 1, plus any other fields given."""
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  return state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      opt_state=opt_state,
      **replace,
  )


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def is_weight(path: tuple[str, ...]) -> bool:
  """Convolution and dense kernels get L2; BN scales and biases do not."""
  return path[-1] == 'kernel' or path[-1].startswith('depthwise_')


def path_names(path) -> tuple[str, ...]:
  return tuple(getattr(p, 'key', getattr(p, 'name', str(p))) for p in path)


def l2(params: Any, weight_fn=lambda path: 1.0) -> jax.Array:
  """Sum over kernels of weight_fn(path) * ||w||^2."""
  total = jnp.zeros((), jnp.float32)
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = path_names(path)
    if is_weight(names):
      total = total + weight_fn(names) * jnp.sum(jnp.square(leaf.astype(jnp.float32)))
  return total
