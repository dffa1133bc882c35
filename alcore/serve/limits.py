"""What a public deployment lets its visitors do: caps read from the environment or
``secrets.toml``, checks that say in plain words what is over them, and a table of
run slots shared by every browser session of one server process.

A public Streamlit server is one process (on Community Cloud: 2 CPUs, about 2.7 GB)
shared by everyone who has the link. Every cap is off by default, so a local
``streamlit run app.py`` and the CLI behave as before; reading paths on the server
is the exception: it is off unless the person deploying turns it on.

Each setting has one name per place, like the config's fields and CLI flags:
the field ``max_pool_size`` is the environment variable ``ALCORE_MAX_POOL_SIZE``
and the key ``max_pool_size`` of the ``[limits]`` table in ``secrets.toml``.
An environment variable wins over the same key in ``secrets.toml``.

No Streamlit here: the dashboard passes ``os.environ`` and ``st.secrets`` in.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Hashable, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from alcore.config import ExperimentConfig

ENV_PREFIX = "ALCORE_"
SECRETS_TABLE = "limits"
# A run slot not renewed for this long is free again: a closed tab or a visitor who
# left the Run page mid-race must not hold it forever. Longer than one round of a
# large run, which is when a race renews its slot.
RUN_SLOT_TTL_S = 120.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNSET = {"", "none", "off"}
# Two whole MNIST pools (about 220 MB each once prepared) and change: on a 2.7 GB
# Community Cloud server, TensorFlow and the models take about 1.3 GB of the rest.
DEFAULT_DATASET_CACHE_MB = 600


class DeploymentLimitsError(ValueError):
    """A setting that cannot be read; the message names the variable or key."""


class DeploymentLimits(BaseModel):
    """The deployer's caps. ``None`` means no cap (the default for every number)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_server_paths: bool = Field(
        False, description="Offer the 'idx' dataset and the data_dir box, which read folders "
        "on the server. Off: visitors cannot type a path; mnist / fashion_mnist still load "
        "from $ALCORE_DATA_DIR or the Keras download.")
    max_pool_size: Optional[int] = Field(
        None, ge=1, description="Most images in the unlabeled pool (pool_size, or the whole "
        "training split when pool_size is empty).")
    max_rounds: Optional[int] = Field(
        None, ge=1, description="Most acquisition rounds per run (set by rounds, or by "
        "label_budget / batch_size); a run bounded only by a target accuracy is refused.")
    max_labels: Optional[int] = Field(
        None, ge=1, description="Most labels a run may reach (initial + rounds x batch_size, "
        "or label_budget; fixed validation labels included).")
    max_mc_passes: Optional[int] = Field(
        None, ge=2, description="Most stochastic forward passes (mc_passes) for the Bayesian "
        "strategies bald, var_ratios and mean_std.")
    max_runs_per_race: Optional[int] = Field(
        None, ge=1, description="Most runs in one race (strategies x seeds); each seed that "
        "draws its own pool (a pool_size or test_size, or a dataset without a test split) "
        "holds its own copy of it in memory.")
    max_concurrent_runs: Optional[int] = Field(
        None, ge=1, description="Most races and trainings computing at once, across every "
        "browser session of the server.")
    dataset_cache_mb: Optional[int] = Field(
        DEFAULT_DATASET_CACHE_MB, ge=0, description="Megabytes of prepared datasets kept for "
        "reuse across sessions (a whole MNIST pool is about 220 MB); least recently used "
        "ones are dropped beyond it. Datasets in use by a run stay in memory regardless. "
        "'none': no bound.")

    # -- reading ----------------------------------------------------------------------
    @classmethod
    def env_name(cls, field: str) -> str:
        return ENV_PREFIX + field.upper()

    @classmethod
    def from_sources(cls, env: Optional[Mapping[str, str]] = None, secrets: Optional[Mapping] = None) -> "DeploymentLimits":
        """Settings from ``secrets[SECRETS_TABLE]`` overridden by ``ALCORE_*`` variables in
        ``env``. Raises :class:`DeploymentLimitsError` naming a bad value or an unknown key."""
        env = env or {}
        values: dict = {}
        table = (secrets or {}).get(SECRETS_TABLE) or {}
        if not isinstance(table, Mapping):
            raise DeploymentLimitsError(f"[{SECRETS_TABLE}] in secrets.toml must be a table of settings, "
                                        f"got {type(table).__name__}")
        unknown = sorted(set(table) - set(cls.model_fields))
        if unknown:
            raise DeploymentLimitsError(
                f"unknown key(s) {', '.join(map(repr, unknown))} in [{SECRETS_TABLE}] of secrets.toml; "
                f"the settings are {', '.join(cls.model_fields)}")
        for field in cls.model_fields:
            if field in table:
                values[field] = cls._parse(field, table[field], f"{field} in [{SECRETS_TABLE}] of secrets.toml")
            name = cls.env_name(field)
            if name in env:
                values[field] = cls._parse(field, env[name], f"environment variable {name}")
        return cls(**values)

    @classmethod
    def _parse(cls, field: str, raw, where: str):
        if field == "allow_server_paths":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise DeploymentLimitsError(f"{where} must be 1 / true / yes / on or 0 / false / no / off, "
                                        f"got {raw!r}")
        lowest = cls.model_fields[field].metadata[0].ge
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in _UNSET):
            return None
        if isinstance(raw, bool):
            value = None
        elif isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip().replace("_", "")
            value = int(text) if text.isdigit() else None
        if value is None or value < lowest:
            raise DeploymentLimitsError(f"{where} must be a whole number of at least {lowest} "
                                        f"(or 'none' for no limit), got {raw!r}")
        return value

    # -- checking ---------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether anything is capped (the server-paths switch aside)."""
        return any(getattr(self, f) is not None for f in type(self).model_fields
                   if f not in ("allow_server_paths", "dataset_cache_mb"))

    def describe(self) -> list[str]:
        """The caps in force, in words (for a visitor)."""
        words = {"max_pool_size": "{} pool images", "max_rounds": "{} rounds per run",
                 "max_labels": "{} labels per run", "max_mc_passes": "{} mc_passes",
                 "max_runs_per_race": "{} runs per race", "max_concurrent_runs": "{} runs at once on the server"}
        return [w.format(f"{getattr(self, f):,}") for f, w in words.items() if getattr(self, f) is not None]

    def data_problems(self, config: ExperimentConfig, *, pool_images: Optional[int] = None,
                      upload_dir: Optional[str | Path] = None) -> list[str]:
        """What about the config's data this deployment refuses: :meth:`path_problems`
        and :meth:`pool_problems`."""
        return self.path_problems(config, upload_dir) + self.pool_problems(config, pool_images)

    def path_problems(self, config: ExperimentConfig, upload_dir: Optional[str | Path] = None) -> list[str]:
        """Paths on the server the config would read, unless this deployment allows them.
        ``upload_dir``: where the dashboard keeps uploads, the one place ``data_file`` may
        point to without server paths."""
        if self.allow_server_paths:
            return []
        problems = []
        if config.dataset == "idx":
            problems.append("dataset 'idx' reads a folder on the server, which this deployment "
                            "does not allow: choose another dataset")
        if config.data_dir:
            problems.append("data_dir names a folder on the server, which this deployment does "
                            "not allow: leave it empty")
        if config.data_file and not _inside(config.data_file, upload_dir):
            problems.append("data_file is a path on the server, which this deployment does not "
                            + ("allow: upload the .zip of images instead" if config.dataset == "images"
                               else "allow: upload the .npz file instead"))
        return problems

    def pool_problems(self, config: ExperimentConfig, pool_images: Optional[int] = None) -> list[str]:
        """The pool over ``max_pool_size``. ``pool_images``: the size the pool will have when
        ``pool_size`` is empty (the whole training split; see :func:`whole_pool_size`);
        unknown, such a config is refused rather than guessed at."""
        cap = self.max_pool_size
        if cap is None:
            return []
        if config.pool_size is not None:
            if config.pool_size > cap:
                return [f"pool_size {config.pool_size:,} is over this server's limit of "
                        f"{cap:,} pool images: set it to {cap:,} or fewer"]
        elif pool_images is None:
            return [f"pool_size is empty (the whole training split) and this server allows "
                    f"at most {cap:,} pool images: set pool_size"]
        elif pool_images > cap:
            return [f"the whole training split of {config.dataset} is {pool_images:,} images, "
                    f"over this server's limit of {cap:,} pool images: set pool_size to "
                    f"{cap:,} or fewer"]
        return []

    def run_problems(self, config: ExperimentConfig, strategies: Optional[Sequence[str]] = None,
                     n_runs: int = 1) -> list[str]:
        """What about the runs this deployment refuses: rounds, labels, passes, runs per race.
        ``strategies`` default to the config's own; ``n_runs`` is strategies x seeds."""
        from alcore.strategies.base import Need, strategy_class

        strategies = list(strategies) if strategies is not None else [config.strategy]
        problems = []
        if self.max_rounds is not None:
            rounds = config.acquisition_rounds()
            if rounds is None:
                problems.append(f"the run has neither rounds nor label_budget, so nothing bounds it; "
                                f"this server allows at most {self.max_rounds:,} rounds per run: set rounds")
            elif rounds > self.max_rounds:
                problems.append(f"the run makes {rounds:,} rounds, over this server's limit of "
                                f"{self.max_rounds:,} rounds per run: lower rounds (or label_budget)")
        if self.max_labels is not None:
            labels = config.max_labels()
            if labels is None:
                problems.append(f"the run has neither rounds nor label_budget, so nothing bounds its "
                                f"labels; this server allows at most {self.max_labels:,} per run: set "
                                f"label_budget or rounds")
            elif labels > self.max_labels:
                problems.append(f"the run can reach {labels:,} labels, over this server's limit of "
                                f"{self.max_labels:,} labels per run: lower rounds, batch_size or "
                                f"label_budget")
        if self.max_mc_passes is not None and config.mc_passes > self.max_mc_passes:
            stochastic = [s for s in dict.fromkeys(strategies) if Need.MC_PASSES in strategy_class(s).needs]
            if stochastic:
                problems.append(f"mc_passes {config.mc_passes} is over this server's limit of "
                                f"{self.max_mc_passes} (used by {', '.join(stochastic)}): set it to "
                                f"{self.max_mc_passes} or fewer")
        if self.max_runs_per_race is not None and n_runs > self.max_runs_per_race:
            problems.append(f"the race has {n_runs} runs (strategies x seeds), over this server's limit "
                            f"of {self.max_runs_per_race} runs per race: race fewer strategies or seeds")
        return problems

    def check(self, config: ExperimentConfig, strategies: Optional[Sequence[str]] = None, n_runs: int = 1, *,
              pool_images: Optional[int] = None, upload_dir: Optional[str | Path] = None) -> list[str]:
        """Every problem of :meth:`data_problems` and :meth:`run_problems`; empty when allowed."""
        return (self.data_problems(config, pool_images=pool_images, upload_dir=upload_dir)
                + self.run_problems(config, strategies, n_runs))


def whole_pool_size(n_train: int, has_test_split: bool, test_size: Optional[int]) -> int:
    """Pool images when ``pool_size`` is empty: the training split, less the test images
    held out from it when the dataset has no test split (as :func:`alcore.data.datasets.prepare` does)."""
    if has_test_split:
        return n_train
    n_test = test_size if test_size is not None else max(1, int(round(0.2 * n_train)))
    return max(n_train - n_test, 0)


def _inside(path: str, folder: Optional[str | Path]) -> bool:
    if folder is None:
        return False
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError):
        return False


class RunSlots:
    """A bounded table of leases, one per owner (a browser session), safe to share
    between the threads of every session.

    ``try_acquire`` takes a slot (or keeps the owner's own); ``renew`` proves the owner
    is still there; a lease not renewed for ``ttl`` seconds is free for others. A lease
    taken with ``expires=False`` stays until released: for a computation that runs in
    one call, inside ``try``/``finally``. ``capacity`` None grants every request.
    """

    def __init__(self, capacity: Optional[int] = None, ttl: float = RUN_SLOT_TTL_S,
                 clock: Callable[[], float] = time.monotonic):
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1 (or None for no limit), got {capacity}")
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.capacity, self.ttl, self._clock = capacity, float(ttl), clock
        self._leases: dict[Hashable, tuple[float, bool]] = {}  # owner -> (last renewal, expires)
        self._lock = threading.Lock()

    def _drop_stale(self, now: float) -> None:
        stale = [o for o, (t, expires) in self._leases.items() if expires and now - t > self.ttl]
        for owner in stale:
            del self._leases[owner]

    def try_acquire(self, owner: Hashable, *, expires: bool = True) -> bool:
        """Take a slot for ``owner`` (or renew the one it holds); False when all are taken."""
        with self._lock:
            now = self._clock()
            if owner not in self._leases:
                self._drop_stale(now)
                if self.capacity is not None and len(self._leases) >= self.capacity:
                    return False
            self._leases[owner] = (now, expires)
            return True

    def renew(self, owner: Hashable) -> bool:
        """Mark ``owner`` as still running; False when it holds no slot (never took one,
        released it, or it lapsed and another owner's request cleared it)."""
        with self._lock:
            if owner not in self._leases:
                return False
            self._leases[owner] = (self._clock(), self._leases[owner][1])
            return True

    def release(self, owner: Hashable) -> None:
        with self._lock:
            self._leases.pop(owner, None)

    def holds(self, owner: Hashable) -> bool:
        with self._lock:
            self._drop_stale(self._clock())
            return owner in self._leases

    def in_use(self) -> int:
        """Slots held now (lapsed leases do not count)."""
        with self._lock:
            self._drop_stale(self._clock())
            return len(self._leases)
