"""Incremental builds rebuild exactly when the spec, the templates or the compiler change."""

import shutil

from conftest import REPO
from neurogen import cache
from neurogen.build import build


def test_template_hash_follows_every_template(tmp_path, monkeypatch):
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    monkeypatch.setattr(cache, "template_folder", lambda: templates)
    before = cache.template_hash()
    assert cache.template_hash() == before  # a pure function of the files
    names = sorted(p.name for p in templates.glob("*.j2"))
    assert names, "no templates"
    for name in names:
        path = templates / name
        text = path.read_text()
        path.write_text(text + "\n")
        assert cache.template_hash() != before, f"{name} is not hashed"
        path.write_text(text)
    assert cache.template_hash() == before


def test_cache_key_depends_on_spec_and_templates():
    key = cache.cache_key("spec", "t1")
    assert key == cache.cache_key("spec", "t1")
    assert len({key, cache.cache_key("spec ", "t1"), cache.cache_key("spec", "t2")}) == 3


def test_changed_templates_rebuild_everything(tmp_path, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("lif", "sigmoid"):
        shutil.copy(REPO / "specs" / f"{name}.toml", specs)
    out = tmp_path / "out"
    assert [r.status for r in build([specs], out)] == ["built", "built"]
    key = cache.recorded_key(out / "lif.py")
    assert key == cache.cache_key((specs / "lif.toml").read_text(encoding="utf-8"), cache.template_hash())
    assert [r.status for r in build([specs], out)] == ["unchanged", "unchanged"]
    monkeypatch.setattr(cache, "template_hash", lambda: "another compiler")
    monkeypatch.setattr("neurogen.build.template_hash", lambda: "another compiler")
    assert [r.status for r in build([specs], out)] == ["built", "built"]
