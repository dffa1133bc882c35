"""The Dask worker plugin of :mod:`alcore.sweep.runner` (its own module: importing ``distributed``
takes seconds, and the dashboard reads sweep specs without running any)."""
from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from alcore.sweep.runner import PLUGIN


class WorkerCaches(WorkerPlugin):
    """Each worker process keeps its own dataset and model caches, so cells on the same data
    load it once per process and reuse compiled models. They are made on the worker's first
    cell (making them imports TensorFlow, which that cell's timings then show)."""

    name = PLUGIN

    def __init__(self, dataset_cache_mb: int = 1024):
        self.dataset_cache_mb = dataset_cache_mb
        self.datasets = None
        self.trainers = None

    def ready(self) -> "WorkerCaches":
        if self.datasets is None:
            from alcore.data.datasets import DatasetCache
            from alcore.engine.training import TrainerCache

            self.datasets = DatasetCache(self.dataset_cache_mb * 1024 * 1024)
            self.trainers = TrainerCache()
        return self

    def teardown(self, worker=None):
        self.datasets = self.trainers = None
