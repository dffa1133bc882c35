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

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"


@dataclass(frozen=True)
class Preset:
    key: str  # the folder's name
    name: str
    description: str
    folder: Path
    files: tuple[Path, ...]

    def command(self) -> str:
        return f"python -m alcore sweep presets/{self.key}/spec.toml --out presets/{self.key}"


def list_presets(root: Optional[Union[str, Path]] = None) -> list[Preset]:
    """Every preset folder with a readable spec and at least one result file, by name."""
    from .sweep import SweepSpecError, load_spec

    root = Path(root) if root is not None else PRESETS_DIR
    out = []
    for folder in sorted(p for p in root.glob("*") if (p / "spec.toml").is_file()):
        files = tuple(sorted(folder.glob("*.json")))
        if not files:
            continue
        try:
            spec, _ = load_spec(folder / "spec.toml")
        except SweepSpecError:
            continue
        out.append(Preset(key=folder.name, name=spec.name or folder.name, description=spec.description.strip(),
                          folder=folder, files=files))
    return out


def load_preset(preset: Preset) -> list:
    """The preset's complete runs (a file that does not load raises ResultFileError naming it;
    a stopped run, from an interrupted sweep, is left out)."""
    from .results import load_result

    results = [load_result(path) for path in preset.files]
    return [r for r in results if r.status == "complete"]
