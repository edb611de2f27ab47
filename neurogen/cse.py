"""Common-subexpression elimination over the step IR.

A subexpression that a statement computes more than once (``min(v_peak, voltage)``
twice in AdEx's RK4 stages) becomes a ``_``-prefixed local computed once, just
before the statement.  Subtrees are matched exactly as written (SymPy's ``cse``
would first rewrite the expressions in its canonical order), so the step performs
the same floating-point operations on the same operands: results are bit-for-bit
those of the unshared code, and bound specs stay bit-exact against nengo.
Masked statements keep their own form (their reads are indexed per neuron).
"""

import itertools

import sympy as sp

from .ir import Assign, Output, Store, Update, temporary

#: statements whose value is computed for every neuron (safe to share parts of)
SHARED = (Assign, Store, Update, Output)


def eliminate(statements):
    """``statements`` with repeated subexpressions computed once: within one
    statement, and across a run of local assignments (which change no state, so a
    subexpression has one value throughout the run)."""
    counter = itertools.count()
    out, run = [], []

    def flush():
        out.extend(_share_run(run, counter))
        run.clear()

    for s in statements:
        if isinstance(s, Assign):
            if any(s.target in r.reads() | r.writes() for r in run):
                flush()  # a name rebound (J = ...): its subexpressions change value
            run.append(s)
            continue
        flush()
        if isinstance(s, SHARED):
            run.append(s)
            flush()
        else:
            out.append(s)
    flush()
    return _renumber(out)


def _renumber(statements):
    """Name the shared locals ``_c0, _c1, ...`` in the order they are defined."""
    shared = [s.target for s in statements if isinstance(s, Assign) and s.target.name.startswith("_c")]
    names = {old: temporary(f"c{i}") for i, old in enumerate(shared)}
    if not names:
        return statements
    with sp.evaluate(False):
        return [
            type(s)(**{k: v.xreplace(names) if isinstance(v, sp.Basic) else v for k, v in s.__dict__.items()})
            for s in statements
        ]


def _share_run(run, counter):
    """A run of statements (all but the last are local assignments) with the
    subexpressions repeated anywhere in it computed once, before their first use."""
    if not run:
        return []
    values = [s.value for s in run]
    holder = sp.Tuple(*values)
    shared, found = _shared(holder, counter)
    values = list(shared.args)
    definitions = dict(found)
    out, defined = [], set()

    def define(symbol):
        for dep in sorted(definitions[symbol].free_symbols & set(definitions) - defined, key=str):
            define(dep)
        out.append(Assign(symbol, definitions[symbol]))
        defined.add(symbol)

    for s, value in zip(run, values):
        for symbol in sorted(value.free_symbols & set(definitions) - defined, key=str):
            if symbol not in defined:
                define(symbol)
        out.append(_with_value(s, value))
    return out


def _with_value(statement, value):
    fields = dict(statement.__dict__, value=value)
    return type(statement)(**fields)


def _candidates(expr):
    """Subtrees worth sharing: calls and arithmetic, not symbols, numbers or conditions."""
    for node in sp.preorder_traversal(expr):
        if (
            isinstance(node, sp.Expr)
            and not node.is_Atom
            and not node.is_number
            and not (isinstance(node, sp.Mul) and len(node.args) == 2 and node.args[0] == -1)
            # 1/x prints as a division by its parent (a / x); shared it would be a * (1/x)
            and not (isinstance(node, sp.Pow) and node.args[1].is_negative)
        ):
            yield node


def _shared(value, counter):
    """``(value, [(symbol, subexpression)])``: largest repeated subtrees first, in an
    order where each local is defined before it is read."""
    found = []
    while True:
        counts = {}
        trees = [value] + [arg for _, expr in found for arg in expr.args]
        for tree in trees:
            for node in _candidates(tree):
                counts[node] = counts.get(node, 0) + 1
        repeated = [n for n, c in counts.items() if c > 1]
        if not repeated:
            return value, _ordered(found)
        node = max(repeated, key=lambda n: (sp.count_ops(n, visual=False), sp.default_sort_key(n)))
        symbol = temporary(f"c{next(counter)}")
        with sp.evaluate(False):
            value = value.xreplace({node: symbol})
            found = [(s, e.func(*[a.xreplace({node: symbol}) for a in e.args])) for s, e in found]
        found.append((symbol, node))


def _ordered(found):
    """Definitions sorted so that each comes after the locals it reads."""
    pending, done, out = list(found), set(), []
    symbols = {s for s, _ in found}
    while pending:
        for item in pending:
            if (item[1].free_symbols & symbols) <= done:
                out.append(item)
                done.add(item[0])
                pending.remove(item)
                break
    return out
