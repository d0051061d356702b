"""Flax modules of osas: the one-shot supernet and stand-alone models."""

from osas.models.network import ModelSpec
from osas.models.standalone import Standalone, params_from_supernet
from osas.models.supernet import Supernet
