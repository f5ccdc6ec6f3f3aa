"""The distribution's version (read by hatchling)."""

__version__ = "1.1.0"
