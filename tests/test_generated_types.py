"""repr, pickle and equality of every generated neuron type (nengo compares and
caches neuron types by value, and pickles them with a model)."""

import copy
import pickle

import numpy as np
import pytest
from nengo.params import NumberParam

from conftest import REPO, generated_module

MODULES = sorted(p.stem for p in (REPO / "generated").glob("*.py") if p.stem != "__init__")


def _other_values(cls):
    """``{parameter: a valid non-default value}`` for every NumberParam of ``cls``."""
    nt, values = cls(), {}
    for name in dir(cls):
        param = getattr(cls, name, None)
        if not isinstance(param, NumberParam) or name in ("surrogate_scale", "smoothing"):
            continue
        default = getattr(nt, name)
        for value in (default * 1.5, default + 0.5, default - 0.5, default * 0.5):
            if value == default:
                continue
            try:
                cls(**{name: value})
            except Exception:  # noqa: BLE001 - outside the parameter's bounds
                continue
            values[name] = value
            break
    return values


def _upstream_argreprs(cls):
    """The bound class when it overrides nengo's ``_argreprs`` (nengo_extras'
    SoftLIFRate appends ``sigma`` to nengo 4's list, which already has it: its repr
    repeats ``sigma=`` three times); None otherwise."""
    for base in cls.__mro__[1:]:
        if "_argreprs" in vars(base):
            return None if base.__module__.startswith("nengo.") else base
    return None


@pytest.mark.parametrize("name", MODULES)
def test_repr_round_trips(name):
    cls = generated_module(name).NEURON_TYPE
    assert repr(cls()) == f"{cls.__name__}()"
    others = _other_values(cls)
    assert others, "no parameter to vary"
    upstream = _upstream_argreprs(cls)
    for key, value in others.items():
        nt = cls(**{key: value})
        if upstream is not None:  # inherited on purpose: the bound class's repr, as it is
            assert "_argreprs" not in vars(cls)
            assert repr(nt).startswith(f"{cls.__name__}({key}={value!r}")
            continue
        assert repr(nt) == f"{cls.__name__}({key}={value!r})"
        again = eval(repr(nt), {cls.__name__: cls})  # the repr is the constructor call
        assert type(again) is cls and getattr(again, key) == value


@pytest.mark.parametrize("name", MODULES)
def test_pickle_round_trips(name):
    cls = generated_module(name).NEURON_TYPE
    others = _other_values(cls)
    nt = cls(**others)
    back = pickle.loads(pickle.dumps(nt))
    assert type(back) is cls and back == nt
    for key, value in others.items():
        assert getattr(back, key) == value
    # the unpickled type still simulates like the original
    state = nt.make_state(4, rng=np.random.RandomState(0), dtype=np.float64)
    state_back = copy.deepcopy(state)  # arrays, and the rng of a stochastic type
    J = np.array([-1.0, 0.5, 2.0, 10.0])
    out, out_back = np.zeros(4), np.zeros(4)
    with np.errstate(all="ignore"):
        for _ in range(20):
            nt.step(0.001, J, out, **state)
            back.step(0.001, J, out_back, **state_back)
    np.testing.assert_array_equal(out_back, out)


@pytest.mark.parametrize("name", MODULES)
def test_equality_is_by_type_and_parameters(name):
    mod = generated_module(name)
    cls = mod.NEURON_TYPE
    assert cls() == cls() and hash(cls()) == hash(cls())
    for key, value in _other_values(cls).items():
        assert cls(**{key: value}) == cls(**{key: value}), key
        assert hash(cls(**{key: value})) == hash(cls(**{key: value})), key
        assert cls(**{key: value}) != cls(), key
    for base in cls.__mro__[1:]:
        if base.__module__.startswith(("nengo", "nengo_extras")) and base.__name__ != "NeuronType":
            assert cls() != base(), f"equal to its bound class {base.__name__}"
