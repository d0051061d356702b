"""The supernet training step the benchmarks time: its config section, a fresh state, the step."""

import functools

import jax
import jax.numpy as jnp
import ml_collections

from configs import default
from osas import parallel
from osas import samplers
from osas.train import supernet as supernet_train


def section(**fields) -> ml_collections.ConfigDict:
  """configs/default.py's `config.supernet` (the paper's values) with `fields` changed."""
  supernet = default.get_config().supernet
  supernet.update(fields)
  return supernet


def fresh_state(params, tx) -> supernet_train.SupernetState:
  """A step-0 state of copies of `params`: the step donates its state, `params` survive."""
  return supernet_train.SupernetState(
      step=jnp.zeros((), jnp.int32),
      params=jax.tree.map(jnp.copy, params),
      opt_state=tx.init(params),
      key=jax.random.key(2),
  )


def jitted_step(model, tx, supernet: ml_collections.ConfigDict, mesh):
  """`train_step` of `model`, jitted with its state donated, masks by supernet.sampler."""
  return jax.jit(
      functools.partial(
          supernet_train.train_step,
          model=model,
          tx=tx,
          sampler=samplers.get_sampler(supernet.sampler),
          section=supernet,
          masks_sharding=parallel.data_sharding(mesh),
      ),
      donate_argnums=0,
  )
