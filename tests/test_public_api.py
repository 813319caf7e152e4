"""The public API: what ``asd_se`` exports, and the README teaching only those names (its example runs in
``test_bench_any_model.py``)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import asd_se

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_python() -> list[str]:
    """The README's ```python blocks."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_every_public_name_is_the_one_in_its_home_module():
    for name, home in asd_se._PUBLIC.items():
        assert getattr(asd_se, name) is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        asd_se.nothing_here  # noqa: B018


def test_importing_the_package_loads_no_model_code():
    code = "import sys, asd_se; print(sorted(m for m in ('torch', 'av', 'asd_se.models') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_imports_only_public_names():
    blocks = readme_python()
    assert blocks, "the README has no python example"
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] == "asd_se":
                assert node.module == "asd_se", f"README imports from {node.module}: use the public names"
                assert {alias.name for alias in node.names} <= set(asd_se.__all__)

