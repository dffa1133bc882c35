"""Query strategies, one module per family, all in one registry.

- :mod:`.base`: the three layers (score, top-k, :class:`~.base.Strategy`), random,
  the uncertainty measures and hybrid;
- :mod:`.diversity`: k-means, core-set, BADGE, margin-cluster and friends;
- :mod:`.bayesian`: MC-dropout strategies (BALD, variation ratios, mean std).

Importing this package registers every family in :data:`.base.STRATEGIES`, which
the CLI, config validation and the Strategy page read.
"""
from alcore.strategies import base, bayesian, diversity

for _family in (diversity, bayesian):
    base.register(_family)
