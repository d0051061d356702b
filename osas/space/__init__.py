"""Search spaces as data: the registry, the generic types and the two built-in spaces.

`get_space(name)` returns a registered space (`bender2018`, the paper's and the
default; `nasbench201`). `Space` and `ArchBase` are what every space provides;
`SearchSpace`, `Arch`, `Block` and `Masks` are the paper's space (bender2018.py),
`NasBench201Space` and `EdgeMasks` the benchmark's (nasbench201.py).
"""

from osas.space.base import ArchBase
from osas.space.base import Space
from osas.space.base import SpaceBase
from osas.space.base import from_config
from osas.space.base import get_space
from osas.space.base import register_space
from osas.space.bender2018 import BENDER2018_OPS
from osas.space.bender2018 import Arch
from osas.space.bender2018 import Block
from osas.space.bender2018 import Masks
from osas.space.bender2018 import SearchSpace
from osas.space.nasbench201 import NB201_OPS
from osas.space.nasbench201 import EdgeMasks
from osas.space.nasbench201 import NasBench201Space
