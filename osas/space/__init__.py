"""Search spaces as data: the registry, the generic types and the two built-in spaces.

`get_space(name)` returns a registered space (`bender2018`, the paper's and the
default; `nasbench201`). `Space` and `ArchBase` are what every space provides;
`SearchSpace`, `Arch`, `Block` and `Masks` are the paper's space (bender2018.py),
`NasBench201Space` and `EdgeMasks` the benchmark's (nasbench201.py).
"""

from osas.space.base import ArchBase, Space, SpaceBase, from_config, get_space, register_space
from osas.space.bender2018 import BENDER2018_OPS, Arch, Block, Masks, SearchSpace
from osas.space.nasbench201 import NB201_OPS, EdgeMasks, NasBench201Space
