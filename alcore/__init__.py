"""alcore: the active-learning engine behind the dashboard.

Importing ``alcore`` is cheap: TensorFlow is imported only when a model is first
built or trained (``alcore.engine.training`` / ``alcore.engine.models``).
"""
from alcore._version import __version__  # noqa: E402,F401

from alcore.config import ExperimentConfig  # noqa: E402

__all__ = ["ExperimentConfig", "Experiment", "load_dataset", "load_result", "save_result", "__version__"]


def __getattr__(name):
    # Lazy re-exports keep `import alcore` light.
    if name == "Experiment":
        from alcore.engine.loop import Experiment
        return Experiment
    if name == "load_dataset":
        from alcore.data.datasets import load_dataset
        return load_dataset
    if name in ("load_result", "save_result"):
        from alcore.results import records
        return getattr(records, name)
    raise AttributeError(f"module 'alcore' has no attribute {name!r}")
