"""The search spaces: each module defines one and registers it by name (see base.py)."""

from osas.spaces import bender2018
from osas.spaces import nasbench201
from osas.spaces.base import ArchBase, Space, SpaceBase, from_config, get_space, register_space
