"""Flax modules of osas: the one-shot supernet and stand-alone models of every space."""

# Each space's module registers its networks, cost and usage (osas.models.registry).
from osas.models import bender2018
from osas.models import nasbench201
from osas.models.registry import SpaceModels
from osas.models.registry import of
from osas.models.registry import register_models
from osas.models.skeleton import ModelSpec
from osas.models.standalone import Standalone
from osas.models.standalone import params_from_supernet
from osas.models.supernet import Supernet
