"""What a public deployment lets its visitors do: caps read from the environment or
``secrets.toml``, checks that say in plain words what is over them, and a table of
run slots shared by every browser session of one server process.

A public Streamlit server is one process (on Community Cloud: 2 CPUs, about 2.7 GB)
shared by everyone who has the link. With nothing configured every cap has a default
sized for that container (see :data:`DEFAULTS_FOR`), so a server nobody configured is
safe; a deployer, or a local user with a bigger machine, raises a cap by setting it (a
number, or ``none`` for no cap). Reading paths on the server is off unless turned on.
The CLI reads none of this: it runs what it is asked to on the machine it runs on.

The costs of a setting (parameters, activation memory, gradient steps, images scored,
bytes of data and of result files) are computed by :mod:`alcore.serve.resources` from the
config and the data's shape before anything is built or loaded.

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
from alcore.serve import resources
from alcore.serve.resources import DataShape, data_shape

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
MB = 2**20
# Twice the default encoder_steps: on a 2-core server the default (1 000 steps on 28x28 images)
# trains in a few minutes (bench/ssl_embeddings.py), so this allows a longer encoder but not one
# that holds a CPU for an hour.
DEFAULT_MAX_ENCODER_STEPS = 2_000


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
        20_000, ge=1, description="Most images in the unlabeled pool (pool_size, or the whole "
        "training split when pool_size is empty). 20 000 MNIST images are 63 MB as float32.")
    max_test_size: Optional[int] = Field(
        10_000, ge=1, description="Most test images evaluated every round (test_size, or the whole "
        "test split when test_size is empty): MNIST's and CIFAR-10's whole test splits.")
    max_classes: Optional[int] = Field(
        100, ge=2, description="Most classes of a dataset (CIFAR-100, EMNIST's 62): the charts "
        "and the per-class tables grow with them.")
    max_rounds: Optional[int] = Field(
        100, ge=1, description="Most acquisition rounds per run (set by rounds, or by "
        "label_budget / batch_size); a run bounded only by a target accuracy is refused.")
    max_labels: Optional[int] = Field(
        5_000, ge=1, description="Most labels a run may reach (initial + rounds x batch_size, "
        "or label_budget; fixed validation labels included).")
    max_mc_passes: Optional[int] = Field(
        50, ge=2, description="Most stochastic forward passes (mc_passes) for the Bayesian "
        "strategies bald, var_ratios and mean_std.")
    max_runs_per_race: Optional[int] = Field(
        15, ge=1, description="Most runs in one race (strategies x seeds); each seed that "
        "draws its own pool (a pool_size or test_size, or a dataset without a test split) "
        "holds its own copy of it in memory.")
    max_concurrent_runs: Optional[int] = Field(
        2, ge=1, description="Most races and trainings computing at once, across every "
        "browser session of the server (one per CPU).")
    max_parameters: Optional[int] = Field(
        5_000_000, ge=1, description="Most parameters of the model (weights and biases, counted "
        "from the settings and the image shape; 20 MB as float32, 80 MB with Adam's state).")
    max_model_mb: Optional[int] = Field(
        1024, ge=1, description="Most megabytes a model needs to train or predict: its weights "
        "(with their gradients and Adam's state) and the activations of one training mini-batch "
        "(with their gradients) or of one 4 096-image prediction chunk, or the transfer backbone's "
        "256-image chunk. The default cnn on CIFAR-10 needs about 900.")
    max_steps_per_round: Optional[int] = Field(
        5_000, ge=1, description="Most gradient steps (mini-batches) one round may train for, "
        "at the most labels the run reaches: max_epochs x batches (twice with refit), or the "
        "min_steps..max_steps schedule.")
    max_round_seconds: Optional[int] = Field(
        300, ge=1, description="Most seconds one round of a race may compute (training, scoring "
        "and picking): a round still running then is stopped, with every finished round kept. "
        "The settings' costs are counted before a race starts; this bounds what the arithmetic "
        "cannot (a slow machine, a busy one).")
    max_encoder_steps: Optional[int] = Field(
        DEFAULT_MAX_ENCODER_STEPS, ge=1, description="Most gradient steps of the self-supervised "
        "encoder's training (encoder_steps), which runs before the first round. Its parameters and "
        "memory count against max_parameters and max_model_mb like a model's.")
    max_scored_per_round: Optional[int] = Field(
        200_000, ge=1, description="Most images run through the model each round to pick: "
        "candidates (or the whole unlabeled pool) x mc_passes for bald / var_ratios / mean_std, "
        "plus test images x mc_passes with mc_evaluation.")
    max_dataset_mb: Optional[int] = Field(
        400, ge=1, description="Most megabytes of prepared data a race holds: float32 pool and "
        "test images (and transfer features), once per seed that draws its own pool.")
    max_file_mb: Optional[int] = Field(
        256, ge=1, description="Most megabytes an uploaded .npz may unpack to (read from its "
        "array headers before anything is loaded). MNIST as uint8 is 55 MB.")
    max_upload_images: Optional[int] = Field(
        30_000, ge=1, description="Most files in an uploaded .zip of images (checked from its directory "
        "before it is kept): the largest pool and test set this server races, together.")
    max_upload_pixels: Optional[int] = Field(
        300_000_000, ge=1, description="Most pixels of all the images of an uploaded .zip together, as "
        "their headers declare them, before they are scaled to image_size: what bounds the decoding "
        "time (1 000 photos of 640x480 are 307 M). max_file_mb also bounds what the .zip unpacks to.")
    max_result_mb: Optional[int] = Field(
        16, ge=1, description="Most megabytes of result files read at once (one upload on Replay "
        "or Compare; parsing costs about 25 times the file's size) and the most a run's result "
        "file may reach, so that every run can be uploaded again. A preset's files are under 2 MB.")
    max_uploads_mb: Optional[int] = Field(
        1024, ge=1, description="Most megabytes of uploaded data files (.npz, .zip of images) kept on "
        "the server's disk for every session together; beyond it the uploads of the sessions that "
        "used theirs least recently are removed (they are asked to upload again). Each session keeps "
        "at most its dataset and one file to view a result with, and its uploads go when it ends.")
    dataset_cache_mb: Optional[int] = Field(
        DEFAULT_DATASET_CACHE_MB, ge=0, description="Megabytes of prepared datasets kept for "
        "reuse across sessions (a whole MNIST pool is about 220 MB); least recently used "
        "ones are dropped beyond it. Datasets in use by a run stay in memory regardless. "
        "'none': no bound.")

    def image_limits(self):
        """The images loader's limits on this server: its own (alcore.data.images), lowered to
        max_upload_images files, max_upload_pixels pixels and max_file_mb unpacked."""
        from alcore.data.images import ImageLimits

        own = ImageLimits()
        lower = {"max_members": self.max_upload_images, "max_total_pixels": self.max_upload_pixels,
                 "max_total_bytes": None if self.max_file_mb is None else self.max_file_mb * MB}
        return ImageLimits(**{**vars(own), **{k: min(v, getattr(own, k)) for k, v in lower.items() if v is not None}})

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

    @classmethod
    def unlimited(cls, **changes) -> "DeploymentLimits":
        """Every cap off (what setting each to 'none' gives), with ``changes``."""
        off = {f: None for f in cls.model_fields if f not in ("allow_server_paths", "dataset_cache_mb")}
        return cls(**{**off, **changes})

    def describe(self) -> list[str]:
        """The caps in force, in words (for a visitor)."""
        words = {"max_pool_size": "{} pool images", "max_rounds": "{} rounds per run",
                 "max_labels": "{} labels per run", "max_mc_passes": "{} mc_passes",
                 "max_runs_per_race": "{} runs per race", "max_concurrent_runs": "{} runs at once on the server",
                 "max_test_size": "{} test images", "max_classes": "{} classes",
                 "max_parameters": "{} model parameters", "max_model_mb": "{} MB per model",
                 "max_steps_per_round": "{} training steps per round", "max_round_seconds": "{} s per round",
                 "max_encoder_steps": "{} steps of encoder training",
                 "max_scored_per_round": "{} images scored per round", "max_dataset_mb": "{} MB of data",
                 "max_file_mb": "{} MB per uploaded dataset", "max_result_mb": "{} MB of result files",
                 "max_uploads_mb": "{} MB of uploads kept on the server"}
        return [w.format(f"{getattr(self, f):,}") for f, w in words.items() if getattr(self, f) is not None]

    # -- costs ------------------------------------------------------------------------
    def model_problems(self, config: ExperimentConfig, image_shape: Sequence[int],
                       n_classes: Optional[int]) -> list[str]:
        """The model's parameters and activation memory over this server's caps, computed
        from the settings and the image shape (nothing is built)."""
        cost = resources.model_cost(config, image_shape, max(n_classes or 2, 2))
        if cost.problem:
            return [cost.problem]
        problems = []
        at_least = "" if n_classes else "at least "
        if self.max_parameters is not None and cost.parameters > self.max_parameters:
            problems.append(f"the {config.model} model has {at_least}{cost.parameters:,} parameters; this server "
                            f"allows at most {self.max_parameters:,}: {_smaller_model(config)}")
        if self.max_model_mb is not None and cost.memory_bytes > self.max_model_mb * MB:
            problems.append(f"the {config.model} model needs {at_least}{_mb(cost.memory_bytes)} to train or "
                            f"predict (weights and activations); this server allows at most {self.max_model_mb:,} MB: "
                            f"{_less_activation(config)}")
        return problems

    def embedding_problems(self, config: ExperimentConfig, image_shape: Optional[Sequence[int]]) -> list[str]:
        """The cost of computing the config's embedding over this server's caps, checked before it
        starts: the self-supervised encoder's steps, parameters and training memory, or a frozen
        backbone's memory (:func:`alcore.serve.resources.encoder_cost`). ``image_shape`` None (not
        known without loading): the steps alone."""
        cost = resources.encoder_cost(config, image_shape or (1, 1, 1))
        if cost is None:
            return []
        if image_shape is None:
            cost = resources.EncoderCost(0, 0, cost.steps)
        problems = []
        what = "the self-supervised encoder" if config.embedding == "self_supervised" else f"the {config.backbone} backbone"
        if self.max_encoder_steps is not None and cost.steps > self.max_encoder_steps:
            problems.append(f"{what} would train for {cost.steps:,} steps (encoder_steps); this server allows at "
                            f"most {self.max_encoder_steps:,}: lower encoder_steps")
        if self.max_parameters is not None and cost.parameters > self.max_parameters:
            problems.append(f"{what} has {cost.parameters:,} parameters; this server allows at most "
                            f"{self.max_parameters:,}: lower embedding_dim")
        if self.max_model_mb is not None and cost.memory_bytes > self.max_model_mb * MB:
            fix = ("lower embedding_dim, or use smaller images" if config.embedding == "self_supervised"
                   else "lower backbone_size")
            problems.append(f"{what} needs {_mb(cost.memory_bytes)} to " +
                            ("train" if cost.steps else "compute its features") +
                            f"; this server allows at most {self.max_model_mb:,} MB: {fix}")
        return problems

    def training_problems(self, config: ExperimentConfig, strategies: Sequence[str],
                          pool_images: Optional[int] = None, test_images: int = 0, *, ceiling_candidates: int = 0,
                          ceiling_validation: int = 0) -> list[str]:
        """Gradient steps per round and images scored per round over this server's caps. A round of
        the oracle ceiling (``ceiling_candidates`` K > 0) trains K + 1 models and scores each on
        ``ceiling_validation`` images (:func:`alcore.serve.resources.ceiling_steps_per_round`)."""
        problems = []
        steps = resources.steps_per_round(config)
        if self.max_steps_per_round is not None and steps is not None and steps > self.max_steps_per_round:
            problems.append(f"a round trains for up to {steps:,} gradient steps; this server allows at most "
                            f"{self.max_steps_per_round:,}: lower max_epochs (or set max_steps), or raise "
                            f"train_batch_size")
        elif "uherding" in strategies and config.uherding_temperature is None and steps \
                and self.max_steps_per_round is not None and 2 * steps > self.max_steps_per_round:
            # the calibration trains a second model each round, on 70% of the labels
            problems.append(f"a round of uherding with a calibrated temperature trains 2 models (its own, and one "
                            f"on 70% of the labels to choose the temperature), up to {2 * steps:,} gradient steps; "
                            f"this server allows at most {self.max_steps_per_round:,}: set uherding_temperature "
                            f"(1: the probabilities as they are), or lower max_epochs (or set max_steps)")
        if not problems and ceiling_candidates and self.max_steps_per_round is not None and steps is not None:
            ceiling_steps = resources.ceiling_steps_per_round(config, ceiling_candidates)
            if ceiling_steps > self.max_steps_per_round:
                problems.append(f"a round of the oracle ceiling trains {ceiling_candidates + 1} models "
                                f"(ceiling_candidates {ceiling_candidates} + its own), up to {ceiling_steps:,} "
                                f"gradient steps; this server allows at most {self.max_steps_per_round:,}: lower "
                                f"ceiling_candidates or max_steps, or turn the oracle ceiling off")
        if self.max_scored_per_round is not None and pool_images is not None:
            scored = resources.scored_per_round(config, strategies, pool_images, test_images)
            if ceiling_candidates:
                ceiling_scored = scored + ceiling_candidates * ceiling_validation
                if scored <= self.max_scored_per_round < ceiling_scored:
                    problems.append(f"a round of the oracle ceiling scores {ceiling_scored:,} images (candidates, "
                                    f"and ceiling_validation x ceiling_candidates); this server allows at most "
                                    f"{self.max_scored_per_round:,}: lower ceiling_validation or ceiling_candidates")
            if scored > self.max_scored_per_round:
                what = "candidates x mc_passes" + (", test images x mc_passes" if config.mc_evaluation else "")
                fix = ", or turn mc_evaluation off" if config.mc_evaluation else ""
                problems.append(f"each round scores {scored:,} images ({what}); this server "
                                f"allows at most {self.max_scored_per_round:,}: set candidates lower, or lower "
                                f"mc_passes{fix}")
        return problems

    def dataset_problems(self, config: ExperimentConfig, shape: Optional[DataShape] = None,
                         seeds: int = 1) -> list[str]:
        """What about the data is over this server's caps, from its shape alone (see
        :func:`alcore.serve.resources.data_shape`; for a .npz its headers, nothing loaded):
        the bytes the file unpacks to, the classes, the test images, and the prepared
        bytes of the copies ``seeds`` seeds hold. Nothing is said where the shape is unknown."""
        shape = shape or data_shape(config)
        if shape is None:
            return []
        problems = self.file_problems(shape)
        if not shape.usable or self._file_too_big(shape):
            return problems
        n_test = shape.test_images(config)
        if self.max_test_size is not None and n_test > self.max_test_size:
            problems.append(f"the run would test on {n_test:,} images every round; this server allows at most "
                            f"{self.max_test_size:,}: set test_size to {self.max_test_size:,} or fewer")
        if self.max_dataset_mb is not None:
            copies = resources.dataset_copies(config, seeds)
            nbytes = copies * resources.dataset_bytes(config, shape)
            if nbytes > self.max_dataset_mb * MB:
                held = f"{copies} copies (one per seed, each drawing its own pool) of " if copies > 1 else ""
                problems.append(f"the prepared data takes {_mb(nbytes)} ({held}{shape.pool_images(config):,} pool "
                                f"and {n_test:,} test images as float32); this server allows at most "
                                f"{self.max_dataset_mb:,} MB: lower pool_size or test_size"
                                + (", or race fewer seeds" if copies > 1 else ""))
        return problems

    def file_problems(self, shape: DataShape) -> list[str]:
        """What about a user's data file this server refuses whatever the settings: the bytes
        its arrays unpack to and its classes (checked on an upload before it is kept)."""
        if self._file_too_big(shape):
            return [f"the .npz file's arrays unpack to {shape.file_bytes:,} bytes ({_mb(shape.file_bytes)}); "
                    f"this server allows at most {self.max_file_mb:,} MB: upload a smaller file"]
        if shape.usable and self.max_classes is not None and shape.n_classes is not None \
                and shape.n_classes > self.max_classes:
            return [f"the dataset has {shape.n_classes:,} classes; this server allows at most {self.max_classes:,}"]
        return []

    def _file_too_big(self, shape: DataShape) -> bool:
        return self.max_file_mb is not None and shape.file_bytes is not None and shape.file_bytes > self.max_file_mb * MB

    def result_problems(self, config: ExperimentConfig, shape: DataShape) -> list[str]:
        """A run whose result file could grow over ``max_result_mb``: this server could not
        read it back (Replay, Compare) or continue it."""
        rounds = config.acquisition_rounds()
        if self.max_result_mb is None or rounds is None or shape.n_classes is None:
            return []
        nbytes = resources.result_file_bytes(config, shape, rounds)
        if nbytes <= self.max_result_mb * MB:
            return []
        return [f"each run's result file may reach {_mb(nbytes)}; this server reads result files of at most "
                f"{self.max_result_mb:,} MB: lower rounds, batch_size or inspect_k"]

    def upload_problems(self, files: Sequence[tuple[str, int]]) -> list[Optional[str]]:
        """For each uploaded result file ``(name, bytes)``, None when it may be read, else why
        not: this server reads at most ``max_result_mb`` of result files at once (checked
        before anything is parsed: parsing costs about 25 times a file's size)."""
        out: list[Optional[str]] = []
        total = 0
        cap = None if self.max_result_mb is None else self.max_result_mb * MB
        for name, size in files:
            if cap is not None and size > cap:
                out.append(f"{name} is {_mb(size)}; this server reads result files of at most "
                           f"{self.max_result_mb:,} MB")
            elif cap is not None and total + size > cap:
                out.append(f"{name} ({_mb(size)}) would take the result files read at once to "
                           f"{_mb(total + size)}; this server reads at most {self.max_result_mb:,} MB at once: "
                           f"compare fewer files")
            else:
                total += size
                out.append(None)
        return out

    def data_problems(self, config: ExperimentConfig, *, pool_images: Optional[int] = None,
                      upload_dir: Optional[str | Path] = None) -> list[str]:
        """What about the config's data this deployment refuses: :meth:`path_problems`
        and :meth:`pool_problems`."""
        return self.path_problems(config, upload_dir) + self.pool_problems(config, pool_images)

    def path_problems(self, config: ExperimentConfig, upload_dir: Optional[str | Path] = None) -> list[str]:
        """Paths on the server the config would read, unless this deployment allows them.
        ``upload_dir``: where the dashboard keeps this session's uploads, the one place ``data_file`` may
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
        if config.embedding_file and not _inside(config.embedding_file, upload_dir):
            problems.append("embedding_file is a path on the server, which this deployment does not allow: "
                            "upload the .npz of embeddings instead")
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
        if config.pool_size is None and pool_images is None and config.dataset in resources.KNOWN_SHAPES:
            pool_images = resources.KNOWN_SHAPES[config.dataset].pool_images(config)
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
                     n_runs: int = 1, *, ceiling_candidates: int = 0, ceiling_validation: int = 0) -> list[str]:
        """What about the runs this deployment refuses: rounds, labels, passes, runs per race.
        ``strategies`` default to the config's own; ``n_runs`` is strategies x seeds.
        ``ceiling_candidates`` (K; 0: no oracle ceiling) and ``ceiling_validation``: the race's oracle
        ceiling, one more run per seed that trains K + 1 models per round (alcore.engine.ceiling)."""
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
            stochastic += ["mc_evaluation"] if config.mc_evaluation else []
            if stochastic:
                problems.append(f"mc_passes {config.mc_passes} is over this server's limit of "
                                f"{self.max_mc_passes} (used by {', '.join(stochastic)}): set it to "
                                f"{self.max_mc_passes} or fewer")
        ceilings = -(-n_runs // max(len(set(strategies)), 1)) if ceiling_candidates else 0  # one per seed
        if self.max_runs_per_race is not None and n_runs + ceilings > self.max_runs_per_race:
            what = " and an oracle ceiling per seed" if ceilings else ""
            problems.append(f"the race has {n_runs + ceilings} runs (strategies x seeds{what}), over this server's "
                            f"limit of {self.max_runs_per_race} runs per race: race fewer strategies or seeds"
                            + (", or turn the oracle ceiling off" if ceilings else ""))
        return problems + self.cost_problems(config, strategies, n_runs, ceiling_candidates=ceiling_candidates,
                                             ceiling_validation=ceiling_validation)

    def cost_problems(self, config: ExperimentConfig, strategies: Optional[Sequence[str]] = None,
                      n_runs: int = 1, shape: Optional[DataShape] = None, *, ceiling_candidates: int = 0,
                      ceiling_validation: int = 0) -> list[str]:
        """The costs of a race over this server's caps, from the settings and the data's shape
        (:func:`alcore.serve.resources.data_shape` unless given): model, training, data and
        result files. Where the shape is unknown only what the settings alone decide."""
        strategies = list(strategies) if strategies is not None else [config.strategy]
        shape = shape or data_shape(config)
        ceiling = {"ceiling_candidates": ceiling_candidates, "ceiling_validation": ceiling_validation}
        if shape is None:
            return self.embedding_problems(config, None) + self.training_problems(config, strategies, **ceiling)
        seeds = -(-n_runs // max(len(set(strategies)), 1))
        problems = self.dataset_problems(config, shape, seeds)
        if not shape.usable or self._file_too_big(shape):
            return problems  # nothing more is read of such a file
        return (problems + self.embedding_problems(config, shape.image_shape)
                + self.model_problems(config, shape.image_shape, shape.n_classes)
                + self.training_problems(config, strategies, shape.pool_images(config), shape.test_images(config),
                                         **ceiling)
                + self.result_problems(config, shape))

    def check(self, config: ExperimentConfig, strategies: Optional[Sequence[str]] = None, n_runs: int = 1, *,
              pool_images: Optional[int] = None, upload_dir: Optional[str | Path] = None) -> list[str]:
        """Every problem of :meth:`data_problems` and :meth:`run_problems`; empty when allowed."""
        return (self.data_problems(config, pool_images=pool_images, upload_dir=upload_dir)
                + self.run_problems(config, strategies, n_runs))


def _mb(nbytes: int) -> str:
    return f"{nbytes / MB:,.0f} MB" if nbytes >= 10 * MB else f"{nbytes / MB:,.1f} MB"


def _smaller_model(config: ExperimentConfig) -> str:
    return {"mlp": "use fewer hidden_units", "transfer": "use fewer hidden_units",
            "cnn": "use fewer filters or a larger kernel_size (a smaller Dense input)",
            }.get(config.model, "use smaller images or fewer classes")


def _less_activation(config: ExperimentConfig) -> str:
    if config.model == "transfer":
        return "lower backbone_size"
    return {"cnn": "use fewer filters or a smaller train_batch_size",
            }.get(config.model, "use a smaller train_batch_size or fewer hidden_units")


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
