"""The search spaces' public names: the registry and, as defaults, the paper's space.

`get_space(name)` returns a registered space (`bender2018`, the paper's and the
default; `nasbench201`); `SearchSpace`, `Arch`, `Block` and `Masks` are the bender2018
space's (osas/spaces/bender2018.py), the nasbench201 ones live in
osas/spaces/nasbench201.py. osas/spaces/base.py says what a space provides.
"""

from osas.spaces.base import ArchBase, Space, from_config, get_space, register_space
from osas.spaces.bender2018 import BENDER2018_OPS, Arch, Block, Masks, SearchSpace
from osas.spaces.nasbench201 import NasBench201Space
