"""Plugin registrations and their dependency graph (containerd's ``plugin`` package)."""

from ._graph import order as order
from ._registration import InitContext as InitContext
from ._registration import Instance as Instance
from ._registration import PluginError as PluginError
from ._registration import Registration as Registration
from ._registration import load_entry_points as load_entry_points

__all__ = ["InitContext", "Instance", "PluginError", "Registration", "load_entry_points", "order"]
