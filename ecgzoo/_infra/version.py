"""The installed ecgzoo's version (`ecgzoo.__version__`, `ecgzoo --version`, recorded in runs and caches)."""

__version__ = "0.1.0"
