"""The distribution's version (read by hatchling)."""

__version__ = "1.0.0"
