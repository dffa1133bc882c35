"""alcore: the active-learning engine behind the dashboard.

Importing ``alcore`` is cheap: TensorFlow is imported only when a model is first
built or trained (``alcore.training`` / ``alcore.models``).
"""
__version__ = "0.1.0"

from .config import ExperimentConfig  # noqa: E402
from . import strategies as _strategies, diversity as _diversity, bayesian as _bayesian  # noqa: E402

# Strategy families in their own modules join the one registry here, once the base
# module is complete (registering from strategies.py itself would be a circular import).
for _family in (_diversity, _bayesian):
    _strategies.register(_family)

__all__ = ["ExperimentConfig", "Experiment", "load_dataset", "load_result", "save_result", "__version__"]


def __getattr__(name):
    # Lazy re-exports keep `import alcore` light.
    if name == "Experiment":
        from .loop import Experiment
        return Experiment
    if name == "load_dataset":
        from .data import load_dataset
        return load_dataset
    if name in ("load_result", "save_result"):
        from . import results
        return getattr(results, name)
    raise AttributeError(f"module 'alcore' has no attribute {name!r}")
