"""Lazy registration of the generated NengoDL builders.

A generated module defines its NumPy neuron type and a function that makes its
NengoDL builder (importing TensorFlow).  It hands that function to
:func:`on_nengo_dl`, which makes and registers the builder

* at once, if NengoDL is already imported;
* else right after NengoDL is first imported, in any order: a one-shot import
  hook runs when ``nengo_dl`` has finished executing, so the builder is in
  ``SimNeuronsBuilder.TF_NEURON_IMPL`` before any ``nengo_dl.Simulator`` exists.

So importing a generated module for nengo core never imports TensorFlow.
"""

import importlib.abc
import os
import sys
import threading
import warnings

_PENDING = {}  # make_builder -> its module's name, waiting for nengo_dl
_LOCK = threading.RLock()


def on_nengo_dl(module_name, make_builder):
    """Register ``make_builder()``'s builder with NengoDL now or when it is imported.

    Returns the generated module's ``__getattr__`` (giving ``BUILDER``, which
    imports NengoDL if needed) and its ``register(override=False)``.
    """
    if _nengo_dl_imported():
        builder(make_builder).register()
    else:
        with _LOCK:
            _PENDING[make_builder] = module_name
            _install_hook()

    def __getattr__(name):
        if name == "BUILDER":
            return builder(make_builder, import_nengo_dl=True)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def register(override=False):
        """Register the builder with NengoDL for this type and its bound classes;
        ``override`` also replaces NengoDL's own builders of the bound classes."""
        cls = builder(make_builder, import_nengo_dl=True)
        if cls is not None:
            cls.register(override=override)

    return __getattr__, register


def builder(make_builder, import_nengo_dl=False):
    """The builder class that ``make_builder`` makes (once, kept as its attribute
    ``builder``, so it lives as long as its module); None without NengoDL."""
    with _LOCK:
        if getattr(make_builder, "builder", None) is None:
            if not _nengo_dl_imported():
                if not import_nengo_dl or not quiet_import_nengo_dl():
                    return None
                if getattr(make_builder, "builder", None) is not None:  # the import hook made it
                    return make_builder.builder
            _PENDING.pop(make_builder, None)
            make_builder.builder = make_builder()
        return make_builder.builder


def _nengo_dl_imported():
    return sys.modules.get("nengo_dl") is not None


def quiet_import_nengo_dl():
    """Import NengoDL for neurogen's own use; False where it is not installed.

    Hides exactly NengoDL's "not been tested" notice, and TensorFlow's C++ logs
    while TensorFlow is imported (``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set
    it).  NengoDL then sets the level to 1 itself, so the rest of its import can
    still print TensorFlow's TensorRT line.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")
        try:
            import tensorflow  # noqa: F401
            import nengo_dl  # noqa: F401
        except ImportError:
            return False
    return True


def register_pending():
    """Make and register every builder waiting for NengoDL."""
    with _LOCK:
        pending = list(_PENDING.items())
        _PENDING.clear()
        for make_builder, module_name in pending:
            try:
                builder(make_builder).register()
            except Exception as e:  # never break `import nengo_dl` for the user
                warnings.warn(f"neurogen: could not register the NengoDL builder of {module_name}: {e}")


class _NengoDLHook(importlib.abc.MetaPathFinder):
    """Finds ``nengo_dl`` with the other finders and wraps its loader, so that
    :func:`register_pending` runs as soon as the package has executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "nengo_dl":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # resource readers and the like
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # ours is only a wrapper
        self.loader.exec_module(module)
        _remove_hook()
        register_pending()


_HOOK = _NengoDLHook()


def _install_hook():
    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


def _remove_hook():
    while _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)
