"""Saved races: every finished round is on disk, so a stopped run, a page switch or a
closed browser tab loses nothing.

A race lives in ``<root>/<race_id>/``: ``race.json`` (the shared settings, the
strategies and the seeds, written when the race starts) and one result file per run,
``run<NN>.json``, rewritten atomically (:func:`alcore.results.records.save_result`) after each of
its rounds. Reopening the race (:meth:`RunStore.open`) rebuilds every run with
:meth:`alcore.engine.loop.Experiment.resume`, so continuing picks exactly what an uninterrupted
race would have.

``race_id`` is a random URL-safe token (``secrets.token_urlsafe``): the dashboard puts it in
the page's address, and knowing it is what lets one look at a race, so it must not be
guessable. Continuing it takes more: the manifest keeps the SHA-256 of a secret its owner
holds (the dashboard: a key its browser keeps, never in an address), and :meth:`RunStore.owned_by`
checks a key against it. Ids are checked against a strict pattern before they touch a path.
Old races are pruned by age and count so a public server's disk stays bounded.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from pydantic import Field, ValidationError

from alcore.config import RaceConfig
from alcore.results.records import ResultFileError, RunResult, atomic_write, clean_stale_temp, load_result, save_result

RACE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
MANIFEST = "race.json"


class SavedRaceError(ValueError):
    """A saved race that cannot be opened; the message says why in plain words."""


class RaceManifest(RaceConfig):
    """What a race was started with (written once, when it starts): its :class:`RaceConfig`
    and when."""

    created: float = Field(default_factory=time.time)
    owner: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$",
                                 description="SHA-256 of the secret of whoever may continue the race; "
                                             "None: nobody (races saved before owners were kept)")


def _owner_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def default_root() -> Path:
    """``$ALCORE_RUNS_DIR``, else ``<temp dir>/alcore-runs``."""
    env = os.environ.get("ALCORE_RUNS_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "alcore-runs"


class RunStore:
    """Races saved under one folder (see the module docstring)."""

    def __init__(self, root: Union[str, os.PathLike, None] = None, *, max_age_s: float = 7 * 24 * 3600,
                 max_races: int = 500):
        self.root = Path(root) if root is not None else default_root()
        self.max_age_s = max_age_s
        self.max_races = max_races

    # ------------------------------------------------------------------ paths
    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(16)

    def folder(self, race_id: str) -> Path:
        if not isinstance(race_id, str) or not RACE_ID.fullmatch(race_id):
            raise SavedRaceError("this is not a saved-race link (the race id is malformed)")
        return self.root / race_id

    def exists(self, race_id: str) -> bool:
        try:
            return (self.folder(race_id) / MANIFEST).is_file()
        except SavedRaceError:
            return False

    # ---------------------------------------------------------------- writing
    def create(self, race_id: str, setup: RaceConfig, owner: Optional[str] = None) -> Path:
        """Record a new race's settings (and prune old races). ``owner``: the secret that
        :meth:`owned_by` will later ask for (only its hash is written)."""
        folder = self.folder(race_id)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = RaceManifest(**dict(setup), owner=_owner_hash(owner) if owner else None)
        atomic_write(folder / MANIFEST, manifest.model_dump_json(indent=1).encode())
        self.prune(keep=race_id)
        return folder

    def save_run(self, race_id: str, index: int, result: RunResult) -> Path:
        """Write run ``index``'s result file atomically (the previous version stays until
        the new one is complete)."""
        return save_result(result, self.folder(race_id) / f"run{index:02d}.json")

    def import_results(self, results: Sequence[RunResult], owner: Optional[str] = None) -> str:
        """Save result files of one race (e.g. downloaded earlier, or from the CLI) as a new
        saved race owned by ``owner`` (see :meth:`create`), so it can be opened and continued;
        returns its id."""
        ceilings = [r for r in results if r.ceiling is not None]  # the oracle ceilings (alcore.engine.ceiling)
        results = [r for r in results if r.ceiling is None]
        if not results:
            raise SavedRaceError("no result files given" + (" but oracle ceilings: give the strategies' runs "
                                                             "of the race too" if ceilings else ""))
        strategies = list(dict.fromkeys(r.config.strategy for r in results))
        seeds = sorted({r.config.seed for r in results})
        base = results[0].config.replace(seed=seeds[0], strategy=strategies[0])
        c = ceilings[0].ceiling if ceilings else None
        if c is not None and set(c.strategies) == set(strategies):
            strategies = list(c.strategies)  # the order the ceiling asked them in
        try:
            setup = RaceConfig(base=base, strategies=strategies, seeds=seeds, ceiling=c is not None,
                               ceiling_candidates=c.candidates if c else None,
                               ceiling_validation=len(c.validation_indices) if c else 200)
        except ValueError as e:
            raise SavedRaceError(f"the oracle ceiling's files do not fit these runs: {e}") from e
        runs: dict[int, RunResult] = {}
        for r in ceilings:
            if r.config.seed not in seeds or r.ceiling.strategies != strategies \
                    or r.config.replace(seed=base.seed, strategy=base.strategy) != base:
                raise SavedRaceError(f"{r.label} was made for another race than {results[0].label}: its "
                                     f"strategies, seeds or settings differ")
            i = setup.n_runs + seeds.index(r.config.seed)
            if i in runs:
                raise SavedRaceError(f"two files hold the run {r.label}")
            runs[i] = r
        for r in results:
            if r.oracle != "simulated":
                raise SavedRaceError(f"{r.label} was labelled by a person: continue it on the "
                                     f"'Be the oracle' page, not as a race")
            if r.config.replace(seed=base.seed, strategy=base.strategy) != base:
                raise SavedRaceError(f"{r.label} was made with other settings than {results[0].label}: "
                                     f"only runs of one race (same settings, other strategies or seeds) "
                                     f"can be continued together")
            i = setup.run_index(r.config.strategy, r.config.seed)
            if i in runs:
                raise SavedRaceError(f"two files hold the run {r.label}")
            runs[i] = r
        race_id = self.new_id()
        self.create(race_id, setup, owner)
        for i, r in runs.items():
            self.save_run(race_id, i, r)
        return race_id

    # ---------------------------------------------------------------- reading
    def manifest(self, race_id: str) -> RaceManifest:
        path = self.folder(race_id) / MANIFEST
        try:
            return RaceManifest.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise SavedRaceError("no race is saved under this link on this server (it may have been "
                                 "removed after a week, or the server was restarted)") from None
        except (OSError, ValidationError, ValueError) as e:
            raise SavedRaceError(f"the saved race's settings cannot be read ({type(e).__name__})") from e

    def owned_by(self, race_id: str, key: Optional[str]) -> bool:
        """Whether ``key`` is the secret of the race's owner (compared in constant time)."""
        owner = self.manifest(race_id).owner
        return bool(owner and key) and hmac.compare_digest(owner, _owner_hash(key))

    def results(self, race_id: str) -> dict[int, RunResult]:
        """The saved result file of each run that has finished a round, by run index."""
        out = {}
        for path in sorted(self.folder(race_id).glob("run[0-9][0-9].json")):
            try:
                out[int(path.stem[3:])] = load_result(path)
            except ResultFileError as e:
                raise SavedRaceError(f"a saved run cannot be read: {e}") from e
        return out

    def open(self, race_id: str, *, dataset_for: Optional[Callable] = None, cache=None,
             data_file: Optional[str] = None, embeddings=None, progress=None):
        """The saved race rebuilt as a :class:`alcore.engine.race.Race`, ready to continue.
        ``data_file``: where the race's data file is now (a new upload of the same file), in
        place of the path it was started with. ``embeddings``, ``progress``: as for the Race."""
        from alcore.engine.race import Race

        m = self.manifest(race_id)
        if data_file is not None:
            m = m.model_copy(update={"base": m.base.replace(data_file=data_file)})
        saved = self.results(race_id)
        if any(i >= m.n_runs + m.n_ceilings for i in saved):
            raise SavedRaceError("the saved race holds more runs than its settings describe")
        return Race.of(m, dataset_for=dataset_for, cache=cache, saved=saved, embeddings=embeddings,
                       progress=progress)

    # -------------------------------------------------------------- clean up
    def prune(self, now: Optional[float] = None, keep: Optional[str] = None) -> list[str]:
        """Delete races older than ``max_age_s`` and the oldest beyond ``max_races``, and the
        temporary files saves that were killed left in the others (records.clean_stale_temp)."""
        if not self.root.is_dir():
            return []
        now = time.time() if now is None else now
        races = []
        for d in self.root.iterdir():
            if d.is_dir() and RACE_ID.fullmatch(d.name) and d.name != keep:
                try:
                    races.append((d.stat().st_mtime, d))
                except FileNotFoundError:
                    continue
        races.sort(reverse=True)
        room = self.max_races - (1 if keep else 0)
        removed = []
        for i, (mtime, d) in enumerate(races):
            if now - mtime > self.max_age_s or i >= room:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
            else:
                clean_stale_temp(d)
        if keep is not None:
            clean_stale_temp(self.root / keep)
        return removed

