"""Presets: result files shipped with the repository, loadable in one click.

A preset is a folder under ``presets/`` holding the sweep spec that made it
(``spec.toml``: its ``name`` and ``description`` say what it is and what it showed) and
the result files the sweep wrote. Re-running the spec with ``python -m alcore sweep``
reproduces (or extends) them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from alcore.config import RaceConfig

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"  # alcore/sweep/presets.py -> the repository


RACE_AXES = ("strategy", "seed")  # what a dashboard race varies itself


@dataclass(frozen=True)
class Preset:
    key: str  # the folder's name
    name: str
    description: str
    folder: Path
    files: tuple[Path, ...]
    cells: tuple = ()  # the spec's cells (alcore.sweep.runner.Cell)

    def command(self) -> str:
        return f"python -m alcore sweep presets/{self.key}/spec.toml --out presets/{self.key}"

    def choices(self) -> dict[str, list]:
        """The values of each axis a race cannot vary itself (e.g. activation, hybrid_fraction):
        choose one of each to run the preset live."""
        out: dict[str, list] = {}
        for cell in self.cells:
            for name, value in cell.axes:
                if name not in RACE_AXES and value not in out.setdefault(name, []):
                    out[name].append(value)
        return out

    def race_setup(self, chosen: Optional[dict] = None) -> RaceConfig:
        """The race of this preset's cells that have the ``chosen`` values (default: each axis's
        first): the config of the first such cell, its strategies in order, and its seeds.
        A preset made with early stopping on fewer validation images than a run now accepts
        (``ExperimentConfig.check_early_stopping``) races with validation 'none'."""
        chosen = {k: v[0] for k, v in self.choices().items()} | dict(chosen or {})
        unknown = sorted(set(chosen) - set(self.choices()))
        if unknown:
            raise ValueError(f"{self.name}: no axis {', '.join(unknown)} to choose")
        cells = [c for c in self.cells if all(getattr(c.config, k) == v for k, v in chosen.items())]
        if not cells:
            raise ValueError(f"{self.name}: no cell has {chosen}")
        strategies = list(dict.fromkeys(c.config.strategy for c in cells))
        seeds = sorted({c.config.seed for c in cells})
        config = cells[0].config.replace(seed=seeds[0])
        try:
            config.check_early_stopping()
        except ValueError:
            # made with early stopping on a handful of images, which a run now refuses: race it
            # with today's step schedule (the defaults) instead
            config = config.replace(validation="none")
        return RaceConfig(base=config, strategies=strategies, seeds=seeds)


def list_presets(root: Optional[Union[str, Path]] = None) -> list[Preset]:
    """Every preset folder with a readable spec and at least one result file, by name."""
    from alcore.sweep.runner import SweepSpecError, load_spec

    root = Path(root) if root is not None else PRESETS_DIR
    out = []
    for folder in sorted(p for p in root.glob("*") if (p / "spec.toml").is_file()):
        files = tuple(sorted(folder.glob("*.json")))
        if not files:
            continue
        try:
            spec, cells = load_spec(folder / "spec.toml")
        except SweepSpecError:
            continue
        out.append(Preset(key=folder.name, name=spec.name or folder.name, description=spec.description.strip(),
                          folder=folder, files=files, cells=tuple(cells)))
    return out


def load_preset(preset: Preset) -> list:
    """The preset's complete runs (a file that does not load raises ResultFileError naming it;
    a stopped run, from an interrupted sweep, is left out)."""
    from alcore.results.records import load_result

    results = [load_result(path) for path in preset.files]
    return [r for r in results if r.status == "complete"]
