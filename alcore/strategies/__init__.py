"""Query strategies, one module per family, all in one registry.

- :mod:`.base`: the three layers (score, top-k, :class:`~.base.Strategy`), random,
  the uncertainty measures and hybrid, and the registry;
- :mod:`.diversity`: k-means, core-set, BADGE, margin-cluster and friends;
- :mod:`.coverage`: typicality and coverage for small budgets (TypiClust, ProbCover,
  MaxHerding, UHerding);
- :mod:`.bayesian`: MC-dropout strategies (BALD, variation ratios, mean std).

Each strategy is one class that describes itself (name, family, description, formula,
needs, config fields, ``from_config``) and registers itself in :data:`.base.STRATEGIES`
when its module is imported; importing this package imports every family, in the order
the CLI and the Strategy page list them.
"""
from alcore.strategies import base, diversity, coverage, bayesian  # noqa: F401  (order: the registry's order)
