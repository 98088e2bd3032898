"""pycontainerd: containerd, rebuilt in Python on Trio."""

__version__ = "0.1.0"
