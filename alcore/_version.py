"""The package version, written in the result files (kept apart so records need not import the package)."""
__version__ = "0.2.0"
