"""Building ``specs/`` reproduces the committed ``generated/`` package byte for byte."""

import os

import pytest

from conftest import REPO
from neurogen.build import build


def _files(directory):
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two forced builds of ``specs/`` (run from the repository root, as documented)."""
    root = tmp_path_factory.mktemp("golden")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        first = build(["specs"], root / "first", force=True)
        second = build(["specs"], root / "second", force=True)
    finally:
        os.chdir(cwd)
    return root, first, second


def test_every_spec_builds(builds):
    _, first, second = builds
    assert first, "no specs found"
    for results in (first, second):
        errors = [f"{r.spec_path}: {r.error}" for r in results if r.status != "built"]
        assert not errors, errors


def test_reproduces_generated(builds):
    root, _, _ = builds
    want, got = _files(REPO / "generated"), _files(root / "first")
    assert sorted(got) == sorted(want)
    for name in sorted(want):
        assert got[name] == want[name], f"generated/{name} differs from a fresh build of specs/"


def test_builds_are_byte_identical(builds):
    root, _, _ = builds
    assert _files(root / "first") == _files(root / "second")


def test_unchanged_specs_are_not_rebuilt(builds, tmp_path):
    """Without ``force`` an up-to-date module is skipped and left untouched."""
    root, first, _ = builds
    out = root / "first"
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.py")}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        again = build(["specs"], out)
    finally:
        os.chdir(cwd)
    assert [r.status for r in again] == ["unchanged"] * len(first)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.py")} == before
