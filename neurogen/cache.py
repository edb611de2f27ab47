"""Cache keys for incremental builds (kept free of SymPy so checking is fast),
and the templates, read as package data of ``neurogen.templates``."""

import hashlib
import importlib.resources
import re
from pathlib import Path

from . import __version__

_KEY_LINE = re.compile(r"^# neurogen-cache-key: ([0-9a-f]+)$", re.M)


def template_folder():
    """The folder of templates (an ``importlib.resources`` Traversable).

    Installed (wheel, sdist or editable), the repository's ``templates/`` folder is
    the package ``neurogen.templates``.  A source checkout used without installing
    it (``PYTHONPATH=.``) has no such package; its ``templates/`` folder stands in.
    """
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if (checkout / "module.py.j2").is_file():
        # a source checkout's own templates, even where another checkout is installed
        # (editable) as ``neurogen.templates``
        return checkout
    return importlib.resources.files("neurogen.templates")


def template_names():
    """Names of every template, sorted."""
    return sorted(f.name for f in template_folder().iterdir() if f.name.endswith(".j2"))


def read_template(name):
    """The text of template ``name``."""
    return template_folder().joinpath(name).read_text(encoding="utf-8")


def template_hash():
    """Hash of every template and of the compiler's own source.

    Hashing the compiler too means a changed neurogen rebuilds every module even
    when its version number did not change (as during development).
    """
    digest = hashlib.sha256()
    for name in template_names():
        digest.update(name.encode() + b"\0" + template_folder().joinpath(name).read_bytes())
    package = importlib.resources.files("neurogen")
    for name in sorted(f.name for f in package.iterdir() if f.name.endswith(".py")):
        digest.update(name.encode() + b"\0" + package.joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def cache_key(source, templates=None):
    """Key of a generated module: spec text, neurogen version and template hash."""
    digest = hashlib.sha256()
    for part in (source, __version__, templates or template_hash()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:24]


def recorded_key(module_path):
    """The cache key in an existing generated module's header, or None."""
    try:
        with open(module_path, encoding="utf-8") as f:
            head = f.readline() + f.readline()  # the key is on the second line
    except (OSError, UnicodeDecodeError):
        return None
    m = _KEY_LINE.search(head)
    return m.group(1) if m else None
