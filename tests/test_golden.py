"""Building ``specs/`` reproduces the committed ``generated/`` package byte for byte."""

import os

import pytest

from conftest import REPO, files_of
from neurogen.build import build


@pytest.fixture(scope="module")
def builds(built_specs, tmp_path_factory):
    """The session's forced build of ``specs/`` (the directory, from the repository
    root) and a second one from each spec's absolute path, to compare with."""
    second = tmp_path_factory.mktemp("golden") / "second"
    results = build([REPO / "specs" / p.name for p in sorted((REPO / "specs").glob("*.toml"))], second, force=True)
    return built_specs.out, built_specs.results, second, results


def test_every_spec_builds(builds):
    _, first, _, second = builds
    assert len(first) == len(list((REPO / "specs").glob("*.toml")))
    for results in (first, second):
        errors = [f"{r.spec_path}: {r.error}" for r in results if r.status != "built"]
        assert not errors, errors


def test_reproduces_generated(builds):
    first, _, _, _ = builds
    want, got = files_of(REPO / "generated"), files_of(first)
    assert sorted(got) == sorted(want)
    for name in sorted(want):
        assert got[name] == want[name], f"generated/{name} differs from a fresh build of specs/"


def test_builds_are_byte_identical(builds):
    """Two builds, through different spellings of the same paths, write the same bytes."""
    first, _, second, _ = builds
    assert files_of(first) == files_of(second)


def test_unchanged_specs_are_not_rebuilt(builds):
    """Without ``force`` an up-to-date module is skipped and left untouched."""
    _, _, out, second = builds
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.py")}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        again = build(["specs"], out)
    finally:
        os.chdir(cwd)
    assert [r.status for r in again] == ["unchanged"] * len(second)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.py")} == before
