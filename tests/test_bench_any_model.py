"""The any-model benchmark end to end in seconds (``--tiny``), and the README's any-model example as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def test_tiny_benchmark_reports_accuracy_maps_and_timings(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-W", "ignore", str(ROOT / "scripts" / "bench_any_model.py"), "--tiny",
                             "--se-sparsity", "0.1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    tiny = report["archs"]["tiny"]
    assert [(run["seed"], run["se"], run["se_sparsity"]) for run in tiny["runs"]] == [(0, True, 0.1), (0, False, 0)]
    assert 0 <= tiny["runs"][0]["test_accuracy"] <= 1
    table = tiny["maps"]["table"]
    assert {"se", "se_floor", "se_contrast", "se_class", "asd-se gradcam", "asd-se gradcampp",
            "asd-se eigencam"} <= set(table)
    for row in table.values():
        assert 0 <= row["pointing_strict"] <= row["pointing_tolerant"] <= 1
        assert len(row["randomisation_rho"]) == 2 and 0 <= row["deletion_auc"] <= 1
    if report["peer"]:  # pytorch-grad-cam installed (requirements-bench.lock): the same Grad-CAM++ formula
        assert table["asd-se gradcampp"]["pearson_with_pgc"]["mean"] > 0.99
    timings = tiny["maps"]["seconds_per_image"]
    assert timings["se"] > 0 and timings["se_contrast"] > 0 and timings["se_class"] > 0
    assert timings["asd-se gradcam"] > 0 and report["machine"]["device"] == "cpu"


@pytest.mark.parametrize("arguments,message", [
    (["--se-sparsity", "-1"], "--se-sparsity must be 0 or more, not -1.0"),
    (["--device", "gpu"], "device must be auto, cpu, cuda or cuda:N, not 'gpu'"),
])
def test_bad_settings_are_refused_before_any_work(arguments, message):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_any_model.py"), "--tiny", *arguments],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr


def test_readme_example_runs_as_written():
    try:
        from asd_se.core.torchvision_models import torchvision_models
        torchvision_models()  # where torchvision's C ops cannot load, the README's own import then works too
    except ImportError as error:
        pytest.skip(f"torchvision is not installed ({error}); scripts/test.sh installs it")
    section = (ROOT / "README.md").read_text().split("## Squeeze an explanation out of any model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    explained, by_class = namespace["explained"], namespace["by_class"]
    assert explained.output.shape == (8, 10) and explained.maps.shape == (8, 224, 224)
    assert by_class.maps.shape == (8, 224, 224) and torch.equal(by_class.output, explained.output)
