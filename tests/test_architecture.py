"""Layering rules a user would feel: a light `import alcore`, and no UI in the core."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def test_alcore_never_imports_streamlit():
    for path in (ROOT / "alcore").rglob("*.py"):
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def test_import_alcore_does_not_import_tensorflow():
    code = ("import sys, alcore, alcore.config, alcore.data.datasets, alcore.strategies.base, alcore.results.records, "
            "alcore.analysis.metrics, alcore.engine.inspect, alcore.engine.loop; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.stdout.strip() == "False False", out.stderr


def _tool(name):
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.skip(f"{name} is not installed (pip install -r requirements-dev.txt)")
    return str(path)


def test_layers_of_alcore_hold():
    """pyproject.toml's import-linter contracts: config -> data / strategies -> engine ->
    results -> analysis -> figures -> sweep / serve -> cli, no arrow back up, no streamlit,
    no dashboard; and the dashboard's helpers never import a page."""
    out = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_ruff_finds_nothing():
    """Style errors, unused imports and functions above complexity 15 (pyproject.toml)."""
    out = subprocess.run([_tool("ruff"), "check", "--output-format", "concise", "."], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
