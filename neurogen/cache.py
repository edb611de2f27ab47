"""Cache keys for incremental builds (kept free of SymPy so checking is fast)."""

import hashlib
import re
from pathlib import Path

from . import __version__

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_KEY_LINE = re.compile(r"^# neurogen-cache-key: ([0-9a-f]+)$", re.M)


def template_hash():
    """Hash of every template and of the compiler's own source.

    Hashing the compiler too means a changed neurogen rebuilds every module even
    when its version number did not change (as during development).
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(TEMPLATES.glob("*.j2")) + sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
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
