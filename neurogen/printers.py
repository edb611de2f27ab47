"""Code printers: SymPy's NumPy and TensorFlow printers, adapted to neuron steps.

Changes from SymPy's defaults:

* modules are written ``np.`` / ``tf.``, and floats as Python literals (``0.04``);
* ``Max``/``Min`` become elementwise ``maximum``/``minimum`` (SymPy's NumPy printer
  reduces over a list, which does not broadcast arrays against scalars);
* ``Piecewise`` becomes ``where`` and comparisons infix operators, which work on both
  arrays and tensors;
* in TensorFlow, numeric ``where`` branches are created in the input's dtype, so that
  float32 and float64 graphs both build.
"""

import math

import sympy as sp
from sympy.printing.numpy import NumPyPrinter as _NumPyPrinter

_RELATIONS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "=="}


class _StepPrinterMixin:
    module = None
    alias = None

    def _module_format(self, fqn, register=True):
        if fqn.startswith(self.module + "."):
            fqn = self.alias + fqn[len(self.module) :]
        return fqn

    def _print_Float(self, expr):
        value = float(expr)
        text = repr(value) if math.isfinite(value) else f'float("{value}")'
        return f"({text})" if value < 0 else text

    def _print(self, expr, **kwargs):
        # constant subexpressions (exp(1), 2**-2, max(1, 2)) print as their value:
        # plain floats work with arrays and tensors of any dtype
        if isinstance(expr, sp.Basic) and not expr.is_Atom and expr.is_number and not expr.is_Boolean:
            if not isinstance(expr, (sp.Rational, sp.Mul)) or expr.has(sp.Function, sp.Pow):
                return self._print_Float(sp.Float(expr.evalf(17)))
        return super()._print(expr, **kwargs)

    def _print_Relational(self, expr):
        op = _RELATIONS.get(expr.rel_op)
        if op is None:  # pragma: no cover - the parser only creates the above
            return super()._print_Relational(expr)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _minmax(self, expr, fn):
        # tensors first, so TensorFlow infers the dtype from them
        args = sorted(expr.args, key=lambda a: (a.is_number, sp.default_sort_key(a)))
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{self._module_format(fn)}({text}, {self._print(arg)})"
        return text

    def _print_Max(self, expr):
        return self._minmax(expr, self.module + ".maximum")

    def _print_Min(self, expr):
        return self._minmax(expr, self.module + ".minimum")

    def _branch(self, expr):
        return self._print(expr)

    def _print_And(self, expr):
        return self._reduce(self.logical.format("and"), expr.args)

    def _print_Or(self, expr):
        return self._reduce(self.logical.format("or"), expr.args)

    def _print_Not(self, expr):
        return f"{self.logical.format('not')}({self._print(expr.args[0])})"

    def _reduce(self, fn, args):
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{fn}({text}, {self._print(arg)})"
        return text

    # One arithmetic printer for both backends (SymPy's StrPrinter rules), so NumPy
    # and TensorFlow perform the same operations in the same order.
    def _print_Mul(self, expr):
        return sp.printing.str.StrPrinter._print_Mul(self, expr)

    def _print_Add(self, expr, order=None):
        # SymPy puts numbers first (-1 + x); with two terms, x - 1 is the same operation
        if _number_first(expr):
            expr = sp.Add(*expr.args[::-1], evaluate=False)
        return sp.printing.str.StrPrinter._print_Add(self, expr, order=order)

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == -1:
            return f"1 / {self.parenthesize(base, 50)}"
        if exp == sp.Rational(1, 2):
            return f"{self.alias}.{self.sqrt}({self._print(base)})"
        if exp == 2 and self.alias == "tf":  # tf.pow(x, 2) is not always x * x
            return f"tf.math.square({self._print(base)})"
        if exp.is_Integer and exp > 0:
            return f"{self.parenthesize(base, 60)}**{exp}"
        return f"{self.alias}.{self.pow}({self._print(base)}, {self._print(exp)})"

    def _print_Piecewise(self, expr):
        if expr.args[-1].cond != True:  # noqa: E712 - SymPy's true
            raise ValueError("Piecewise without a default branch")
        text = self._branch(expr.args[-1].expr)
        for value, cond in reversed(expr.args[:-1]):
            text = f"{self._where()}({self._print(cond)}, {self._branch(value)}, {text})"
        return text


class NumPyStepPrinter(_StepPrinterMixin, _NumPyPrinter):
    """Prints expressions for a NumPy ``step`` (``np.`` prefix)."""

    module = "numpy"
    alias = "np"
    sqrt, pow = "sqrt", "power"
    logical = "np.logical_{}"

    def _where(self):
        return "np.where"

    def _print_sigmoid(self, expr):
        return f"1 / (1 + np.exp(-{self.parenthesize(expr.args[0], 100)}))"

    def _print_softplus(self, expr):
        return f"np.logaddexp(0, {self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        # a 0/1 indicator prints as a float array, like nengo's `spiked_mask * ...`
        if _is_indicator(expr):
            return f"np.where({self._print(expr.args[0].cond)}, 1.0, 0.0)"
        return super()._print_Piecewise(expr)


def _number_first(add):
    """A two-term sum printed better the other way round: -1 + x as x - 1."""
    a, b = add.args if len(add.args) == 2 else (None, None)
    return a is not None and a.is_Number and not b.is_Number and not b.could_extract_minus_sign()


def _is_indicator(expr):
    return (
        len(expr.args) == 2
        and expr.args[0].expr == 1
        and expr.args[1].expr == 0
        and expr.args[1].cond == True  # noqa: E712
    )


def _tensorflow_printer_base():
    # SymPy's TensorflowPrinter module imports TensorFlow to check its version;
    # import it only when TensorFlow code is actually printed.
    from sympy.printing.tensorflow import TensorflowPrinter

    return TensorflowPrinter


class _TFMixin(_StepPrinterMixin):
    module = "tensorflow"
    alias = "tf"
    sqrt, pow = "math.sqrt", "math.pow"
    logical = "tf.math.logical_{}"
    #: expression for the dtype of numeric constants that need one
    dtype = "J.dtype"

    def _where(self):
        return "tf.where"

    def _branch(self, expr):
        if expr.is_number:
            return f"tf.constant({self._print(expr)}, {self.dtype})"
        return self._print(expr)

    def _print_Piecewise(self, expr):
        if _is_indicator(expr):
            return f"tf.cast({self._print(expr.args[0].cond)}, {self.dtype})"
        return super()._print_Piecewise(expr)

    def _print_expm1(self, expr):
        return f"tf.math.expm1({self._print(expr.args[0])})"

    def _print_log1p(self, expr):
        return f"tf.math.log1p({self._print(expr.args[0])})"

    def _print_sigmoid(self, expr):
        return f"tf.math.sigmoid({self._print(expr.args[0])})"

    def _print_softplus(self, expr):
        return f"tf.math.softplus({self._print(expr.args[0])})"



_TF_PRINTER = None


def tensorflow_printer():
    """A printer for NengoDL builder code (created on first use)."""
    global _TF_PRINTER
    if _TF_PRINTER is None:
        base = _tensorflow_printer_base()
        cls = type("TensorflowStepPrinter", (_TFMixin, base), {})
        _TF_PRINTER = cls(SETTINGS)
    return _TF_PRINTER


def numpy_printer():
    return NumPyStepPrinter(SETTINGS)


#: keep terms and factors in the order they were written (see neurogen.symbolic)
SETTINGS = {"strict": True, "order": "none"}
