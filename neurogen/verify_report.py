"""The ``neurogen verify`` report: text for people (verdict first, one line per
check, what to do where one fails) and JSON for machines."""

import json
import math

from .verify import FAIL, NA, PASS, SKIP


def text(reports):
    """The whole report as text."""
    failed = [r for r in reports if not r.passed]
    total = f"{len(reports)} spec{'' if len(reports) == 1 else 's'}"
    verdict = f"FAIL ({len(failed)} of {total})" if failed else f"PASS ({total})"
    lines = [f"verify: {verdict}"]
    if len(reports) > 1:
        slowest = max(reports, key=lambda r: r.seconds)
        lines.append(f"slowest: {slowest.spec} ({slowest.seconds:.1f} s)")
    for r in reports:
        lines += [""] + spec_lines(r)
    return "\n".join(lines)


def spec_lines(report):
    counts = {s: sum(c.status == s for c in report.checks) for s in (PASS, FAIL, NA, SKIP)}
    summary = ", ".join(f"{n} {label}" for s, label in ((PASS, "passed"), (FAIL, "failed"), (NA, "not applicable"), (SKIP, "skipped")) if (n := counts[s]))
    threshold = "none (rate model)" if report.threshold is None else f"{report.threshold:.4g}"
    lines = [
        f"{report.spec}: {report.verdict}  {report.model}: {summary}",
        f"  model step dt = {report.dt:g} s, firing threshold J = {threshold}, {report.seconds:.1f} s",
    ]
    for c in report.checks:
        if c.status == NA:
            lines.append(f"  {c.status:4}  {c.name:17}  does not apply: {c.reason}")
        elif c.status == SKIP:
            lines.append(f"  {c.status:4}  {c.name:17}  {c.reason}")
        else:
            lines.append(f"  {c.status:4}  {c.name:17}  {c.compares}: {c.measured} (tolerance {c.tolerance})")
            lines += [f"{'':27}{text}" for text in (c.reason, c.detail) if text]
    hints = [c for c in report.checks if c.status == FAIL and c.hint]
    if hints:
        lines.append("  what to do:")
        lines += [f"    - {c.name}: {c.hint}" for c in hints]
    return lines


def as_json(reports):
    """The report as a JSON document (keys are stable; numbers that are not finite
    are written as the strings "inf" / "nan")."""
    return json.dumps(
        {
            "verdict": PASS if all(r.passed for r in reports) else FAIL,
            "specs": [
                {
                    "spec": r.spec,
                    "model": r.model,
                    "verdict": r.verdict,
                    "dt": r.dt,
                    "threshold": r.threshold,
                    "seconds": round(r.seconds, 3),
                    "checks": [
                        {
                            "name": c.name,
                            "status": c.status,
                            "compares": c.compares,
                            "tolerance": c.tolerance,
                            "measured": c.measured,
                            "value": _number(c.value),
                            "reason": c.reason,
                            "detail": c.detail,
                            "hint": c.hint,
                        }
                        for c in r.checks
                    ],
                }
                for r in reports
            ],
        },
        indent=2,
    )


def _number(x):
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
