"""The controller's policy: an autoregressive LSTM over a space's decisions (ENAS's).

Decision d reads the embedding of decision d-1's choice (a learned start vector for the
first), steps the LSTM and draws from its own softmax; logits are divided by the
temperature and then, as an option, squashed to c * tanh(logits), which keeps every
choice's probability away from zero: c = tanh_constant for a choice of inputs and
tanh_constant / op_tanh_reduce for a choice of ops (ENAS's convolutional cell search: no
temperature, 1.1 and 2.5). All weights start uniform in [-0.1, 0.1], as in ENAS.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.space.decisions import Decisions


def _uniform(key, shape, dtype=jnp.float32):
  return jax.random.uniform(key, shape, dtype, -0.1, 0.1)


def _entropy(log_probs: jax.Array) -> jax.Array:
  return -jnp.sum(jnp.exp(log_probs) * log_probs, -1)


class Policy(nn.Module):
  """log-probabilities, samples and most probable cells of `num_options` choices in turn."""

  num_options: tuple[int, ...]  # K of each decision, in order.
  hidden_size: int = 64
  num_layers: int = 1
  temperature: float = 1.0
  tanh_constant: float = 0.0  # 0: no squashing.
  op_tanh_reduce: float = 1.0  # Ops' decisions squash to tanh_constant / op_tanh_reduce.
  is_op: tuple[bool, ...] = ()  # Per decision: ops (True) or inputs; (): all inputs.

  def setup(self):
    self.cells = [
        nn.LSTMCell(self.hidden_size, kernel_init=_uniform, recurrent_kernel_init=_uniform)
        for _ in range(self.num_layers)
    ]
    self.start = self.param('start', _uniform, (self.hidden_size,))
    # The last decision's choice feeds nothing: no embedding for it.
    self.embeds = [
        nn.Embed(k, self.hidden_size, embedding_init=_uniform) for k in self.num_options[:-1]
    ]
    self.heads = [nn.Dense(k, kernel_init=_uniform) for k in self.num_options]

  def _begin(self, n: int):
    zeros = jnp.zeros((n, self.hidden_size))
    return tuple((zeros, zeros) for _ in self.cells), jnp.broadcast_to(
        self.start, (n, self.hidden_size)
    )

  def _log_probs(self, carry, x, d: int):
    """The LSTM stepped on input x [n, H]; decision d's log-probabilities [n, K_d]."""
    new = []
    for cell, c in zip(self.cells, carry):
      c, x = cell(c, x)
      new.append(c)
    logits = self.heads[d](x) / self.temperature
    if self.tanh_constant:
      is_op = self.is_op[d] if self.is_op else False
      logits = self.tanh_constant / (self.op_tanh_reduce if is_op else 1.0) * jnp.tanh(logits)
    return tuple(new), jax.nn.log_softmax(logits)

  def __call__(self, choices: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Log-probability [N] of choices [N, D], and the summed entropy [N] of each softmax."""
    carry, x = self._begin(choices.shape[0])
    log_prob = entropy = jnp.zeros(choices.shape[0])
    for d in range(len(self.num_options)):
      carry, lp = self._log_probs(carry, x, d)
      log_prob += jnp.take_along_axis(lp, choices[:, d : d + 1], -1)[:, 0]
      entropy += _entropy(lp)
      if d + 1 < len(self.num_options):
        x = self.embeds[d](choices[:, d])
    return log_prob, entropy

  def sample(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """N cells drawn from the policy: choices [n, D], their log-probability and entropy."""
    carry, x = self._begin(n)
    log_prob = entropy = jnp.zeros(n)
    picked = []
    for d in range(len(self.num_options)):
      carry, lp = self._log_probs(carry, x, d)
      choice = jax.random.categorical(jax.random.fold_in(key, d), lp)
      log_prob += jnp.take_along_axis(lp, choice[:, None], -1)[:, 0]
      entropy += _entropy(lp)
      picked.append(choice)
      if d + 1 < len(self.num_options):
        x = self.embeds[d](choice)
    return jnp.stack(picked, -1).astype(jnp.int32), log_prob, entropy

  def beam(self, width: int) -> tuple[jax.Array, jax.Array]:
    """The `width` most probable cells by beam search: choices [width, D], log-probabilities.

    Most probable first; exact while width is at least the number of prefixes at every
    decision, a beam search's approximation beyond. Rows past the number of cells of the
    space have log-probability -inf.
    """
    carry, x = self._begin(width)
    # One live beam to begin with: the others start at -inf and are never chosen first.
    total = jnp.where(jnp.arange(width) == 0, 0.0, -jnp.inf)
    history = jnp.zeros((width, 0), jnp.int32)
    for d, k in enumerate(self.num_options):
      carry, lp = self._log_probs(carry, x, d)
      scores = (total[:, None] + lp).reshape(-1)
      total, index = jax.lax.top_k(scores, width)  # width * k scores: never too few.
      parent, choice = index // k, (index % k).astype(jnp.int32)
      carry = jax.tree.map(lambda c: c[parent], carry)
      history = jnp.concatenate([history[parent], choice[:, None]], -1)
      if d + 1 < len(self.num_options):
        x = self.embeds[d](choice)
    return history, total


def from_config(space, section) -> Policy:
  """The policy of config.controller over `space`'s decisions."""
  decisions = Decisions(space)
  return Policy(
      num_options=decisions.num_options,
      hidden_size=section.hidden_size,
      num_layers=section.num_layers,
      temperature=section.temperature,
      tanh_constant=section.tanh_constant,
      op_tanh_reduce=section.op_tanh_reduce,
      is_op=decisions.is_op,
  )
