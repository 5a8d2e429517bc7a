"""The suite's own rules under CI=true (`.ci/run`, a clean clone): Hypothesis draws the same examples
every run, and a missing optional dependency fails instead of skipping (conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import conftest
from conftest import ROOT


@pytest.mark.parametrize("ci, derandomized", [("true", True), (None, False)])
def test_hypothesis_is_derandomized_under_ci_only(ci, derandomized):
    code = "import conftest, hypothesis; print(hypothesis.settings.default.derandomize)"
    from hypothesis._settings import _CI_VARS  # what makes Hypothesis load its own "ci" profile

    env = {name: value for name, value in os.environ.items() if name not in _CI_VARS} | ({"CI": ci} if ci else {})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "tests", env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == str(derandomized)


def test_a_missing_optional_dependency_fails_under_ci(monkeypatch):
    monkeypatch.setattr(conftest, "CI", True)
    with pytest.raises(pytest.fail.Exception, match="no_such_module_for_ser cannot be imported"):
        conftest.require("no_such_module_for_ser")
    monkeypatch.setattr(conftest, "CI", False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_for_ser cannot be imported"):
        conftest.require("no_such_module_for_ser")
    assert conftest.require("numpy") is np
