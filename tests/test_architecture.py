"""Layering rules a user would feel: a light `import alcore`, and no UI in the core."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_alcore_never_imports_streamlit():
    for path in (ROOT / "alcore").rglob("*.py"):
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def test_import_alcore_does_not_import_tensorflow():
    code = ("import sys, alcore, alcore.config, alcore.data, alcore.strategies, alcore.results, "
            "alcore.metrics, alcore.inspect, alcore.loop; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.stdout.strip() == "False False", out.stderr
