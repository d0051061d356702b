"""The controller's state and its REINFORCE step (ENAS's), as pure functions to jit.

The reward of a sampled cell is its one-shot validation accuracy; the baseline is a moving
average of the rewards (the first step's mean to begin with, so the first advantages are
not all positive); the loss is -mean((reward - baseline) * log p(cell)) minus
entropy_weight times the policy's mean entropy, minimised by Adam.
"""

from __future__ import annotations

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
  return optax.adam(section.learning_rate)


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


def update(
    state: ControllerState, choices: jax.Array, rewards: jax.Array, *, policy, section
) -> tuple[ControllerState, dict[str, jax.Array]]:
  """One REINFORCE step on the cells `choices` [n, D] and their rewards [n]."""
  mean = jnp.mean(rewards)
  decay = section.baseline_decay
  baseline = jnp.where(state.step == 0, mean, decay * state.baseline + (1 - decay) * mean)
  advantage = jax.lax.stop_gradient(rewards - baseline)

  def loss_fn(params):
    log_prob, entropy = policy.apply({'params': params}, choices)
    loss = -jnp.mean(advantage * log_prob) - section.entropy_weight * jnp.mean(entropy)
    return loss, (log_prob, entropy)

  grads, (log_prob, entropy) = jax.grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = optimizer(section).update(grads, state.opt_state, state.params)
  state = state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      opt_state=opt_state,
      baseline=baseline,
  )
  metrics = {
      'reward': mean,
      'baseline': baseline,
      'entropy': jnp.mean(entropy),
      'log_prob': jnp.mean(log_prob),
  }
  return state, metrics


def check(section) -> None:
  """ValueError naming the field when config.controller cannot work."""
  for field in (
      'hidden_size',
      'num_layers',
      'shared_steps',
      'train_steps',
      'num_samples',
      'batch_size',
  ):
    value = section[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f'config.controller.{field}={value!r} must be a positive integer')
  if not section.temperature > 0:
    raise ValueError(f'config.controller.temperature={section.temperature} must be positive')
  if section.tanh_constant < 0:
    raise ValueError(
        f'config.controller.tanh_constant={section.tanh_constant} must be >= 0 (0: off)'
    )
  if not section.learning_rate > 0:
    raise ValueError(f'config.controller.learning_rate={section.learning_rate} must be positive')
  if section.entropy_weight < 0:
    raise ValueError(f'config.controller.entropy_weight={section.entropy_weight} must be >= 0')
  if not 0 <= section.baseline_decay < 1:
    raise ValueError(f'config.controller.baseline_decay={section.baseline_decay} must be in [0, 1)')
