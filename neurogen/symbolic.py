"""Safe parsing of spec expressions into SymPy.

Expressions are parsed with :func:`ast.parse` (which never runs code) and the syntax
tree is translated node by node into SymPy.  Only whitelisted node types, names and
functions are accepted; everything else is a :class:`SpecError` naming the file, the
line and the offending construct.  Spec text never reaches ``eval``, ``exec`` or
``sympify``.
"""

import ast
import math

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .errors import SpecError


class sigmoid(sp.Function):
    """Logistic function ``1 / (1 + exp(-x))``."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class softplus(sp.Function):
    """``log(1 + exp(x))``, evaluated without overflow."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


class Crosses(sp.logic.boolalg.BooleanFunction):
    """``crosses(x, threshold)``: ``x`` rose above ``threshold`` during the step (its
    value before the update ``<= threshold``, after it ``> threshold``).  Only in a
    spike condition; :func:`neurogen.discretize.discretize` lowers it."""

    nargs = 2

    @classmethod
    def eval(cls, x, threshold):
        return None  # never folded

    @property
    def free_symbols(self):
        return self.args[0].free_symbols | self.args[1].free_symbols


def _where(cond, a, b):
    # unevaluated, so SymPy does not fold nested conditions into each other
    return sp.Piecewise((a, cond), (b, True), evaluate=False)


def _clip(x, low, high):
    return sp.Min(sp.Max(x, low, evaluate=False), high, evaluate=False)


def _heaviside(x):
    return sp.Piecewise((1, sp.Gt(x, 0, evaluate=False)), (0, True), evaluate=False)


#: name -> (SymPy constructor, number of arguments, description for the docs)
FUNCTIONS = {
    "exp": (sp.exp, 1, "exponential"),
    "expm1": (expm1, 1, "exp(x) - 1, accurate near 0"),
    "log": (sp.log, 1, "natural logarithm"),
    "log1p": (log1p, 1, "log(1 + x), accurate near 0"),
    "sqrt": (sp.sqrt, 1, "square root"),
    "abs": (sp.Abs, 1, "absolute value"),
    "sign": (sp.sign, 1, "sign (-1, 0 or 1)"),
    "floor": (sp.floor, 1, "round down"),
    "ceil": (sp.ceiling, 1, "round up"),
    "sin": (sp.sin, 1, "sine"),
    "cos": (sp.cos, 1, "cosine"),
    "tanh": (sp.tanh, 1, "hyperbolic tangent"),
    "sigmoid": (sigmoid, 1, "logistic function 1 / (1 + exp(-x))"),
    "softplus": (softplus, 1, "log(1 + exp(x)) without overflow"),
    "heaviside": (_heaviside, 1, "1 where x > 0, else 0"),
    "min": (sp.Min, 2, "elementwise minimum"),
    "max": (sp.Max, 2, "elementwise maximum"),
    "clip": (_clip, 3, "clip(x, low, high) = min(max(x, low), high)"),
    "where": (_where, 3, "where(condition, a, b): a where condition holds, else b"),
}

CONSTANTS = {"pi": sp.pi, "inf": sp.oo}


class RandomDraw(sp.Function):
    """One random number per neuron per step: ``rand()`` or ``randn()`` as written.

    Its one argument is a :class:`sympy.Dummy`, unique to the occurrence, so two
    calls never compare equal (nothing merges or cancels them);
    :func:`neurogen.noise.extract_draws` turns each into an IR ``Draw``."""

    kind = None
    is_real = True

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class rand(RandomDraw):
    """Uniform on [0, 1)."""

    kind = "uniform"


class randn(RandomDraw):
    """Standard normal."""

    kind = "normal"


#: functions of no arguments that draw a fresh random number per neuron and step
RANDOM = {
    "rand": (rand, "uniform random number on [0, 1), a fresh one per neuron and step"),
    "randn": (randn, "standard normal random number, a fresh one per neuron and step"),
}

#: white noise in an ODE (Brian2's ``xi``, units 1/sqrt(s)): see neurogen.noise
XI = sp.Symbol("xi", real=True)

# Expressions are kept unevaluated, exactly as written: printed code then performs
# the same floating-point operations in the same order as the spec (and as nengo's
# hand-written steps), and guards like 1 / where(j > 0, j, 1) stay guards.
# Analysis works on `evaluated(expr)`.
_BINOPS = {
    ast.Add: lambda a, b: sp.Add(a, b, evaluate=False),
    ast.Sub: lambda a, b: sp.Add(a, _negate(b), evaluate=False),
    ast.Mult: lambda a, b: sp.Mul(a, b, evaluate=False),
    ast.Div: lambda a, b: sp.Mul(a, sp.Pow(b, sp.Integer(-1), evaluate=False), evaluate=False),
    ast.Pow: lambda a, b: sp.Pow(a, b, evaluate=False),
}


def _negate(x):
    return -x if x.is_Number else sp.Mul(sp.Integer(-1), x, evaluate=False)


def evaluated(expr):
    """``expr`` with SymPy's automatic simplification applied (for analysis)."""
    if not isinstance(expr, sp.Basic) or expr.is_Atom:
        return expr
    if isinstance(expr, sp.Piecewise):
        pairs = [(evaluated(e), evaluated(c)) for e, c in expr.args]
        return sp.Piecewise(*pairs, evaluate=False)
    return expr.func(*[evaluated(a) for a in expr.args])
_COMPARE = {
    ast.Gt: sp.StrictGreaterThan,
    ast.GtE: sp.GreaterThan,
    ast.Lt: sp.StrictLessThan,
    ast.LtE: sp.LessThan,
}
_NODE_NAMES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.JoinedStr: "strings",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.IfExp: "inline if (use where(condition, a, b))",
}


class _Translator:
    def __init__(self, text, symbols, path):
        self.text = text
        self.symbols = symbols
        self.path = path
        self.crossing_ok = False  # crosses() is allowed in spike conditions only

    def fail(self, message):
        raise SpecError(f"{message} in {self.text.where}", self.path, self.text.line)

    def visit(self, node):
        if isinstance(node, ast.Expression):
            return self.visit(node.body)
        if isinstance(node, ast.Constant):
            return self.constant(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
                self.fail(f"operator {type(node.op).__name__!r} is not allowed{hint}")
            left, right = self.number(node.left), self.number(node.right)
            if isinstance(node.op, ast.Pow) and left.is_number and right.is_number:
                self.constant_power(left, right)
            return op(left, right)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return _negate(self.number(node.operand))
            if isinstance(node.op, ast.UAdd):
                return self.number(node.operand)
            if isinstance(node.op, ast.Not):
                return sp.Not(self.boolean(node.operand))
            self.fail(f"operator {type(node.op).__name__!r} is not allowed")
        if isinstance(node, ast.Compare):
            parts = []
            left = self.number(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                cls = _COMPARE.get(type(op))
                if cls is None:
                    self.fail(f"comparison {type(op).__name__!r} is not allowed (use <, <=, >, >=)")
                right = self.number(right_node)
                parts.append(cls(left, right, evaluate=False))
                left = right
            return sp.And(*parts) if len(parts) > 1 else parts[0]
        if isinstance(node, ast.BoolOp):
            values = [self.boolean(v) for v in node.values]
            return sp.And(*values) if isinstance(node.op, ast.And) else sp.Or(*values)
        if isinstance(node, ast.Call):
            return self.call(node)
        self.fail(f"{_NODE_NAMES.get(type(node), type(node).__name__)} not allowed")

    def constant_power(self, base, exponent):
        """Refuse constant powers too large for a float (and towers SymPy would grind on)."""
        try:
            value = float(base) ** float(exponent)
        except (OverflowError, ZeroDivisionError, TypeError, ValueError):
            self.fail("constant power out of range")
        if isinstance(value, complex) or not math.isfinite(value):
            self.fail("constant power out of range")

    def constant(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "strings" if isinstance(value, (str, bytes)) else repr(value)
            self.fail(f"{kind} not allowed")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail("non-finite number not allowed")
        if isinstance(value, int):
            if abs(value) > 10**300:
                self.fail("number too large")
            return sp.Integer(value)
        return sp.Float(value)

    def name(self, name):
        if name.startswith("__") or name.startswith("_"):
            self.fail(f"name {name!r} not allowed")
        if name in self.symbols:
            return self.symbols[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS or name in RANDOM:
            self.fail(f"function {name!r} used without arguments")
        if name == "xi":
            self.fail("white noise 'xi' is allowed only in an ODE's right-hand side (dx/dt = ... + sigma*xi)")
        self.fail(f"unknown symbol {name!r}")

    def call(self, node):
        if not isinstance(node.func, ast.Name):
            self.fail("only calls of plain function names are allowed")
        fname = node.func.id
        if fname == "crosses":  # a condition form, not a function of numbers
            return self.crossing(node)
        if fname in RANDOM and fname not in self.symbols:
            if node.args or node.keywords:
                self.fail(f"{fname}() takes no arguments")
            return RANDOM[fname][0](sp.Dummy("draw"))
        if fname not in FUNCTIONS:
            if fname in self.symbols:
                self.fail(f"{fname!r} is not a function")
            self.fail(f"unknown function {fname!r}")
        if node.keywords:
            self.fail(f"keyword arguments not allowed in {fname}()")
        func, nargs, _ = FUNCTIONS[fname]
        if len(node.args) != nargs:
            self.fail(f"{fname}() takes {nargs} argument{'s' if nargs > 1 else ''}, got {len(node.args)}")
        if fname == "where":
            cond, a, b = node.args
            allowed, self.crossing_ok = self.crossing_ok, False
            try:
                return func(self.boolean(cond), self.number(a), self.number(b))
            finally:
                self.crossing_ok = allowed
        args = [self.number(a) for a in node.args]
        if isinstance(func, type):  # a SymPy function: keep it unevaluated too
            return func(*args, evaluate=False)
        return func(*args)

    def crossing(self, node):
        """``crosses(x, threshold)``: only in a spike condition, outside ``where``."""
        if not self.crossing_ok:
            self.fail("crosses() is only allowed in a spike condition, outside where()")
        if node.keywords or len(node.args) != 2:
            self.fail(f"crosses() takes 2 arguments (x, threshold), got {len(node.args) + len(node.keywords)}")
        return Crosses(*[self.number(a) for a in node.args])

    def number(self, node):
        value = self.visit(node)
        if isinstance(value, sp.logic.boolalg.Boolean) and not isinstance(value, sp.Symbol):
            self.fail("a condition is used where a number is expected")
        return value

    def boolean(self, node):
        value = self.visit(node)
        # (a SymPy Symbol counts as a Boolean, but here every name is a number)
        if isinstance(value, sp.Symbol) or not isinstance(
            value, (sp.logic.boolalg.Boolean, sp.core.relational.Relational)
        ):
            self.fail("a number is used where a condition is expected")
        return value


MAX_NODES, MAX_DEPTH = 400, 40


def _depth(node):
    """Nesting depth of a syntax tree (iteratively: deep trees are what we refuse)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def parse_expression(text, symbols, path, boolean=False):
    """Parse ``text`` (a :class:`~neurogen.spec.Text`) into SymPy.

    ``symbols`` maps the names allowed here to SymPy symbols or expressions.
    """
    source = text.text.strip()
    if len(source) > 5000:
        raise SpecError(f"expression too long in {text.where}", path, text.line)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        raise SpecError(f"invalid expression {source!r} in {text.where}: {e.msg}", path, text.line) from None
    except (ValueError, MemoryError, RecursionError):
        raise SpecError(f"invalid expression in {text.where}", path, text.line) from None
    nodes = sum(1 for _ in ast.walk(tree))
    depth = _depth(tree)
    if nodes > MAX_NODES or depth > MAX_DEPTH:
        raise SpecError(
            f"expression in {text.where} is too large ({nodes} terms, nesting {depth}; "
            f"at most {MAX_NODES} and {MAX_DEPTH}): use named [expressions]",
            path,
            text.line,
        )
    translator = _Translator(text, symbols, path)
    translator.crossing_ok = boolean
    try:
        value = translator.boolean(tree.body) if boolean else translator.number(tree.body)
    except RecursionError:
        raise SpecError(f"expression nested too deeply in {text.where}", path, text.line) from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
        raise SpecError(f"cannot use expression in {text.where}: {e}", path, text.line) from None
    try:
        check = evaluated(value)
    except (TypeError, ValueError, ZeroDivisionError) as e:
        raise SpecError(f"cannot use expression in {text.where}: {e}", path, text.line) from None
    if check.has(sp.zoo, sp.nan):
        raise SpecError(f"expression in {text.where} is undefined (division by zero?)", path, text.line)
    if not boolean and check.has(sp.I):
        raise SpecError(f"expression in {text.where} is complex (square root of a negative?)", path, text.line)
    for node in sp.preorder_traversal(value):  # as written: 1 / (1/0 + x) hides 1/0
        if isinstance(node, sp.Basic) and node.is_number and not node.is_Boolean:
            try:
                number = complex(node)
            except (TypeError, OverflowError, ValueError):
                number = complex("nan")
            if not (math.isfinite(number.real) and math.isfinite(number.imag)) and node not in (sp.oo, -sp.oo):
                raise SpecError(f"constant {node} in {text.where} is not a finite number", path, text.line)
    return value


_DISTRIBUTIONS = {
    "Uniform": ("low", "high"),
    "Gaussian": ("mean", "std"),
    "Exponential": ("scale", "shift", "high"),
    "Choice": ("options",),
}


def parse_distribution(text, path):
    """Parse a nengo distribution such as ``Uniform(low=0, high=1)``.

    Returns ``(class_name, {arg: value})`` with plain Python numbers, so code can be
    emitted from checked values rather than from spec text.
    """
    where = f"initial value of {text.where}"
    try:
        tree = ast.parse(text.text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        raise SpecError(f"invalid distribution {text.text!r} in {where}", path, text.line) from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        raise SpecError(
            f"{where} must be a number or a distribution such as Uniform(0, 1)", path, text.line
        )
    cls = tree.func.id
    if cls not in _DISTRIBUTIONS:
        raise SpecError(
            f"unknown distribution {cls!r} in {where} (known: {', '.join(_DISTRIBUTIONS)})",
            path,
            text.line,
        )
    names = _DISTRIBUTIONS[cls]
    if len(tree.args) > len(names):
        raise SpecError(f"too many arguments to {cls} in {where}", path, text.line)
    args = dict(zip(names, tree.args))
    for kw in tree.keywords:
        if kw.arg not in names or kw.arg in args:
            raise SpecError(f"bad argument {kw.arg!r} to {cls} in {where}", path, text.line)
        args[kw.arg] = kw.value

    def literal(node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -literal(node.operand)
        if isinstance(node, ast.List) and cls == "Choice":
            return [literal(n) for n in node.elts]
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
            and math.isfinite(node.value)
        ):
            return node.value
        raise SpecError(f"arguments of {cls} must be numbers in {where}", path, text.line)

    values = {k: literal(v) for k, v in args.items()}
    if cls == "Choice" and not values.get("options"):
        raise SpecError(f"Choice needs a non-empty list of options in {where}", path, text.line)
    return cls, values
