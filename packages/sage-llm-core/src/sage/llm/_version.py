"""The distribution's version, read by hatchling at build time (one source of truth)."""

__version__ = "1.1.0"
