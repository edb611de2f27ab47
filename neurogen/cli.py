"""The ``neurogen`` command: wires the pipeline stages to the terminal."""

import argparse
import sys
from pathlib import Path

from .errors import SpecError

EXIT_SPEC_ERROR = 2


def _quiet_libraries():
    """TensorFlow's start-up logs and NengoDL's version notice are not ours to print."""
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")
    warnings.filterwarnings("ignore", message="No GPU support detected")


class _printed_warnings:
    """Print NeurogenWarnings raised inside the block as ``warning: ...`` lines."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        from .errors import NeurogenWarning

        self._catch.__exit__(*exc)
        for w in self._caught:
            if issubclass(w.category, NeurogenWarning):
                print(f"warning: {w.message}", file=sys.stderr)


def _print_error(error):
    print(f"error: {error}", file=sys.stderr)


def cmd_build(args):
    from .build import build

    paths = args.paths or ["specs"]
    out = args.output or "generated"

    def report(result):
        if result.status == "error":
            _print_error(result.error)
        elif not args.quiet:
            verb = "built" if result.status == "built" else "unchanged"
            print(f"{verb:9} {result.spec_path} -> {result.module_path}")

    def start(path):
        _progress(args, f"compiling {path} ...")

    with _printed_warnings():
        results = build(paths, out, force=args.force, on_result=report, on_start=start)
    if not results:
        _print_error(f"no specs found in {' '.join(map(str, paths))}")
        return EXIT_SPEC_ERROR
    return EXIT_SPEC_ERROR if any(r.status == "error" for r in results) else 0


def cmd_check(args):
    from .analysis import stability_warnings
    from .build import analyse_spec, collect
    from .diagnostics import mistakes, step_warnings

    failed = False
    specs = collect(args.paths)
    if not specs:
        _print_error(f"no specs found in {' '.join(args.paths)}")
        return EXIT_SPEC_ERROR
    for path in specs:
        try:
            compiled = analyse_spec(path)
        except SpecError as e:
            _print_error(e)
            failed = True
            continue
        messages = stability_warnings(compiled.model, compiled.program, args.dt)
        messages += step_warnings(compiled.model, compiled.program, args.dt, compiled.sampler)
        messages += mistakes(compiled.model, compiled.program, compiled.sampler)
        for message in messages:
            print(f"warning: {path}: {message}", file=sys.stderr)
        if not args.quiet:
            print(f"ok        {path}")
    return EXIT_SPEC_ERROR if failed else 0


def cmd_show(args):
    from .build import compile_spec
    from .show import describe

    try:
        compiled = compile_spec(args.spec)
    except SpecError as e:
        _print_error(e)
        return EXIT_SPEC_ERROR
    print(describe(compiled.model, compiled.program))
    return 0


def cmd_verify(args):
    from .build import collect
    from .verify import verify_spec
    from .verify_report import as_json, text

    specs = collect(args.paths)
    if not specs:
        _print_error(f"no specs found in {' '.join(args.paths)}")
        return EXIT_SPEC_ERROR
    reports = []
    for path in specs:
        module = Path(args.generated) / f"{path.stem}.py" if args.generated else None
        _progress(args, f"verifying {path} ...")
        try:
            reports.append(verify_spec(path, module, duration=args.duration, quick=args.quick))
        except SpecError as e:
            _print_error(e)
            return EXIT_SPEC_ERROR
    print(as_json(reports) if args.json else text(reports))
    return 0 if all(r.passed for r in reports) else 1


def cmd_plot(args):
    from .plot import PlotOptionError, parse_currents, plot_spec

    out = args.output or f"{args.spec.stem}.png"
    try:
        currents = parse_currents(args.currents) if args.currents else None
        plot_spec(args.spec, out, duration=args.duration, dt=args.dt, currents=currents, states=args.state)
    except (SpecError, PlotOptionError) as e:
        _print_error(e)
        return EXIT_SPEC_ERROR
    print(f"wrote {out}")
    return 0


def cmd_new(args):
    from .starter import starter_spec

    name = args.name
    if not name.isidentifier() or not name[0].isupper():
        _print_error(f"neuron name {name!r} should be a CamelCase class name, such as MyNeuron")
        return EXIT_SPEC_ERROR
    path = Path(args.output or Path("specs") / f"{_snake(name)}.toml")
    if path.exists() and not args.force:
        _print_error(f"{path} exists (use --force to overwrite)")
        return EXIT_SPEC_ERROR
    from .build import write_atomic

    write_atomic(path, starter_spec(name))
    print(f"wrote {path}; build it with: neurogen build {path}")
    return 0


def _snake(name):
    from .starter import snake_case

    return snake_case(name)


def _progress(args, text):
    """A progress line on a terminal (stderr), unless quiet."""
    if sys.stderr.isatty() and not getattr(args, "quiet", False):
        print(text, file=sys.stderr, flush=True)


def parser():
    p = argparse.ArgumentParser(
        prog="neurogen",
        description="Compile neuron specs (TOML) into nengo neuron types and NengoDL builders.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="build specs into Python modules")
    b.add_argument("paths", nargs="*", help="spec files or directories (default: specs/)")
    b.add_argument("-o", "--output", help="output directory (default: generated/)")
    b.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    b.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    b.set_defaults(func=cmd_build)

    c = sub.add_parser("check", help="validate specs without writing anything")
    c.add_argument("paths", nargs="+", help="spec files or directories")
    c.add_argument("-q", "--quiet", action="store_true", help="print errors and warnings only")
    c.add_argument("--dt", type=float, default=0.001, help="time step to check stability for (default 0.001)")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("show", help="print the analysed model and its discretized update")
    s.add_argument("spec", type=Path)
    s.set_defaults(func=cmd_show)
    pl = sub.add_parser("plot", help="plot the tuning curve, state traces and rate approximation")
    pl.add_argument("spec", type=Path)
    pl.add_argument("-o", "--output", help="figure file, .png, .svg or .pdf (default: SPEC_NAME.png)")
    pl.add_argument("--dt", type=float, help="time step in s (default: the step the model needs)")
    pl.add_argument("--currents", metavar="LOW:HIGH|J1,J2,...", help="input currents of the f-I curve (default: around the firing threshold)")
    pl.add_argument("--duration", type=float, help="seconds of the step-input trace (default 0.3)")
    pl.add_argument("--state", action="append", metavar="NAME", help="plot only this state (repeatable; default: all)")
    pl.set_defaults(func=cmd_plot)

    n = sub.add_parser("new", help="write a commented starter spec")
    n.add_argument("name", help="class name of the new neuron type, e.g. MyNeuron")
    n.add_argument("-o", "--output", help="spec file (default: specs/my_neuron.toml)")
    n.add_argument("--force", action="store_true", help="overwrite an existing file")
    n.set_defaults(func=cmd_new)

    v = sub.add_parser("verify", help="check generated code against the spec and an accurate ODE solver")
    v.add_argument("paths", nargs="+", help="spec files or directories")
    v.add_argument("--generated", metavar="DIR", help="verify the modules in DIR instead of fresh builds")
    v.add_argument("--duration", type=float, default=0.5, help="seconds simulated per input (default 0.5)")
    v.add_argument("--quick", action="store_true", help="a fast subset: shorter runs, fewer inputs, no convergence order")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    v.set_defaults(func=cmd_verify)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    _quiet_libraries()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except SpecError as e:  # pragma: no cover - commands report their own
        _print_error(e)
        return EXIT_SPEC_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
