"""The controller's state and its REINFORCE step (ENAS's), as pure functions to jit.

As in ENAS: a sampled cell's reward is its one-shot validation accuracy plus
entropy_weight times the entropy of the softmaxes it was drawn from (a constant, not
differentiated); the baseline is a moving average of the rewards, moved once per cell in
the order drawn (ENAS aggregates its samples one by one), and starts at the first reward
(ENAS: at 0, which makes every early advantage positive); the loss is
-mean((reward - baseline) * log p(cell)), minimised by Adam with ENAS's beta1 = 0 and
epsilon = 1e-3.
"""

from __future__ import annotations

import math
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from osas.controller import policy as policy_lib


class ControllerState(flax.struct.PyTreeNode):
  """Everything the controller carries between steps; checkpointed with the supernet."""

  step: jax.Array  # Controller steps taken.
  params: Any
  opt_state: Any
  baseline: jax.Array  # Moving average of the rewards.
  key: jax.Array  # Controller step t samples with fold_in(key, t).


def optimizer(section) -> optax.GradientTransformation:
  """ENAS's controller optimiser: Adam without momentum on the mean, epsilon 1e-3."""
  return optax.adam(section.learning_rate, b1=0.0, eps=1e-3)


def init_state(policy: policy_lib.Policy, section, key: jax.Array) -> ControllerState:
  init_key, sample_key = jax.random.split(key)
  choices = jnp.zeros((1, len(policy.num_options)), jnp.int32)
  params = policy.init(init_key, choices)['params']
  return ControllerState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=optimizer(section).init(params),
      baseline=jnp.zeros((), jnp.float32),
      key=sample_key,
  )


def sample(params, key: jax.Array, *, policy: policy_lib.Policy, n: int) -> jax.Array:
  """Choices [n, D] drawn from the policy."""
  return policy.apply({'params': params}, key, n, method='sample')[0]


def most_probable(params, *, policy: policy_lib.Policy, width: int) -> tuple[jax.Array, jax.Array]:
  """The policy's `width` most probable choices [width, D] by beam search, and log p."""
  return policy.apply({'params': params}, width, method='beam')


def update(
    state: ControllerState, choices: jax.Array, accuracies: jax.Array, *, policy, section
) -> tuple[ControllerState, dict[str, jax.Array]]:
  """One REINFORCE step on the cells `choices` [n, D] and their one-shot accuracies [n]."""
  _, entropy = policy.apply({'params': state.params}, choices)
  rewards = accuracies + section.entropy_weight * entropy
  decay = section.baseline_decay

  def track(baseline, reward):
    baseline = decay * baseline + (1 - decay) * reward
    return baseline, baseline

  start = jnp.where(state.step == 0, rewards[0], state.baseline)
  baseline, baselines = jax.lax.scan(track, start, rewards)
  advantage = jax.lax.stop_gradient(rewards - baselines)

  def loss_fn(params):
    log_prob, _ = policy.apply({'params': params}, choices)
    return -jnp.mean(advantage * log_prob), log_prob

  grads, log_prob = jax.grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = optimizer(section).update(grads, state.opt_state, state.params)
  state = state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      opt_state=opt_state,
      baseline=baseline,
  )
  metrics = {
      'accuracy': jnp.mean(accuracies),
      'reward': jnp.mean(rewards),
      'baseline': baseline,
      'entropy': jnp.mean(entropy),
      'log_prob': jnp.mean(log_prob),
  }
  return state, metrics


def _number(section, field: str, ok, rule: str) -> None:
  value = section[field]
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    raise ValueError(f'config.controller.{field}={value!r} must be a finite number')
  if not ok(value):
    raise ValueError(f'config.controller.{field}={value!r} must be {rule}')


def check(section) -> None:
  """ValueError naming the field when config.controller cannot work."""
  fields = ('hidden_size', 'num_layers', 'shared_steps', 'train_steps', 'num_samples')
  for field in fields + ('batch_size',):
    value = section[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f'config.controller.{field}={value!r} must be a positive integer')
  _number(section, 'temperature', lambda v: v > 0, 'positive')
  _number(section, 'tanh_constant', lambda v: v >= 0, '>= 0 (0: off)')
  _number(section, 'op_tanh_reduce', lambda v: v > 0, 'positive')
  _number(section, 'learning_rate', lambda v: v > 0, 'positive')
  _number(section, 'entropy_weight', lambda v: v >= 0, '>= 0')
  _number(section, 'baseline_decay', lambda v: 0 <= v < 1, 'in [0, 1)')
