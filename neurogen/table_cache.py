"""Rate tables on disk, so that a new process does not simulate them again.

A table is stored as ``<cache dir>/rate-tables/<key>.npz``.  The key hashes
everything the table depends on: the source files of the neuron type's classes
(the generated module, with its ``step``), the parameter values, the table
options and ``dt``, neurogen's version and the source of the code that simulates
the table (:mod:`neurogen.runtime`).

The cache directory is ``platformdirs.user_cache_dir("neurogen")``, or
``$NEUROGEN_CACHE_DIR``; ``NEUROGEN_NO_CACHE=1`` turns the disk cache off.  Files
are written to a temporary name and renamed, so concurrent processes never read
a partial table; a file that cannot be read or does not match its key is ignored
(and replaced by the next save).

A module imported from a file that is gone by the time its table is keyed (``neurogen
verify`` and ``plot`` import the freshly compiled text from a temporary folder) names
the sha256 of its source in :data:`SOURCE_HASH`, which is what hashing the file
would give: the same text shares its tables with the built module.
"""

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__

FORMAT = "neurogen-rate-table-2"
#: module attribute: the sha256 of the module's source, where it was recorded on import
SOURCE_HASH = "__neurogen_source_sha256__"


def directory():
    """The folder of cached tables, or None when the disk cache is off."""
    if os.environ.get("NEUROGEN_NO_CACHE", "") not in ("", "0"):
        return None
    root = os.environ.get("NEUROGEN_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("neurogen")
    return Path(root) / "rate-tables"


def key(neuron_type, params, options, simulator_file):
    """Hex key of the table of ``neuron_type`` with ``params`` and table ``options``,
    simulated by the code in ``simulator_file``; None where a source file of the
    neuron type's classes is unknown (then nothing is cached)."""
    parts = [FORMAT, __version__, _file_hash(simulator_file)]
    for cls in type(neuron_type).__mro__[:-1]:  # all but object
        digest = _class_hash(cls)
        if digest is None:
            return None
        parts += [cls.__qualname__, digest]  # the module's file, whatever its import name
    parts += [repr(params), repr(sorted(options.items()))]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _class_hash(cls):
    """sha256 of the source of the module defining ``cls`` (None where unknown)."""
    recorded = getattr(sys.modules.get(cls.__module__), SOURCE_HASH, None)
    if recorded is not None:
        return recorded
    path = _source_file(cls)
    return _file_hash(path) if path else None


def _source_file(cls):
    """The file defining ``cls``: its module's, or that of one of its methods."""
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if path:
        return path
    for attribute in vars(cls).values():
        code = getattr(attribute, "__code__", None)
        if code is not None and os.path.exists(code.co_filename):
            return code.co_filename
    return None


_FILE_HASHES = {}


def _file_hash(path):
    """sha256 of a source file (remembered while the file is unchanged), or None."""
    try:
        stat = os.stat(path)
        stamp = (path, stat.st_mtime_ns, stat.st_size)
        if stamp not in _FILE_HASHES:
            with open(path, "rb") as f:
                _FILE_HASHES[stamp] = hashlib.sha256(f.read()).hexdigest()
        return _FILE_HASHES[stamp]
    except OSError:
        return None


def load(table_key, points):
    """The fields (threshold, high, values, ceiling) of the cached table of
    ``table_key``, or None."""
    folder = directory()
    if table_key is None or folder is None:
        return None
    try:
        with np.load(folder / f"{table_key}.npz", allow_pickle=False) as data:
            stored_key = str(data["key"])
            threshold, high = float(data["threshold"]), float(data["high"])
            ceiling = float(data["ceiling"])
            values = np.array(data["values"], dtype=float)
    except Exception:  # missing, truncated, foreign or corrupt: rebuild it
        return None
    if stored_key != table_key or values.shape != (points,) or not np.all(np.isfinite(values)):
        return None
    if not (np.isfinite(threshold) and np.isfinite(high) and high > threshold):
        return None
    return threshold, high, values, ceiling


def save(table_key, table):
    """Store ``table`` under ``table_key`` atomically; a cache that cannot be
    written is skipped silently (the table is then simulated next time, too)."""
    folder = directory()
    if table_key is None or folder is None:
        return
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{table_key}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            arrays = {name: getattr(table, name) for name in ("threshold", "high", "values", "ceiling")}
            np.savez(f, key=np.array(table_key), **arrays)
        os.replace(tmp, folder / f"{table_key}.npz")
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
