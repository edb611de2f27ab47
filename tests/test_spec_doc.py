"""docs/spec-format.md stays true: its examples build, its rejected constructs are
rejected with the stated messages, and its name lists match the code."""

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_spec_format_doc_matches_the_code():
    result = subprocess.run(
        [sys.executable, "docs/check_examples.py"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")
