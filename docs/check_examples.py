"""Check that docs/spec-format.md agrees with the compiler.

    python docs/check_examples.py

* every ```toml block with a [neuron] section is written to a temporary directory
  and checked with ``python -m neurogen check``: it must pass, unless its first line
  is ``# error: <text>``, in which case the check must fail with that text;
* every row of the "What is rejected" table is tried as an [output] expression and
  must fail with the message given in the row;
* the function, constant and reserved-name lists must match neurogen.symbolic and
  neurogen.spec;
* each annotated copy of a bundled spec ("### `specs/x.toml`") must equal the file
  once comments are removed, and the ``neurogen show`` excerpt must be current.

Exits 1 on any mismatch.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "spec-format.md"
sys.path.insert(0, str(ROOT))


def toml_blocks(text):
    return [b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[neuron]" in b]


def rejected_rows(text):
    """(expression, message) from the first example and message of each table row."""
    section = text.split("## What is rejected", 1)[1]
    table = re.search(r"((?:^\|.*\n)+)", section, re.M).group(1)
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3:
            continue
        example = re.findall(r"`([^`]*)`", cells[1])
        message = re.findall(r"`([^`]*)`", cells[2])
        if example and message:
            rows.append((example[0], message[0]))
    return rows


def neurogen_check(paths):
    """{path name: error text or None} from one ``neurogen check`` run."""
    proc = subprocess.run(
        [sys.executable, "-m", "neurogen", "check", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True,
    )
    results = {p.name: f"no result (neurogen check exited {proc.returncode})" for p in paths}
    for line in proc.stdout.splitlines():
        m = re.match(r"ok\s+(\S+\.toml)$", line)
        if m:
            results[Path(m.group(1)).name] = None
    for line in proc.stderr.splitlines():
        m = re.match(r"error: (\S+?\.toml)(?::\d+)?: (.*)", line)
        if m:
            results[Path(m.group(1)).name] = m.group(2)
    return results


def table_items(text, marker):
    block = text.split(f"<!-- {marker}:start -->", 1)[1].split(f"<!-- {marker}:end -->", 1)[0]
    return block


def _code_lines(toml_text):
    lines = (line.split("#", 1)[0].strip() for line in toml_text.splitlines())
    return [line for line in lines if line]


def check_annotated(text):
    failures = []
    for name, block in re.findall(r"### `(specs/\w+\.toml)`.*?\n```toml\n(.*?)```", text, re.S):
        if _code_lines(block) != _code_lines((ROOT / name).read_text(encoding="utf-8")):
            failures.append(f"annotated {name} differs from the file")
    m = re.search(r"`neurogen show (specs/\w+\.toml)` prints.*?\n```\n(.*?)```", text, re.S)
    if m:
        proc = subprocess.run(
            [sys.executable, "-m", "neurogen", "show", m.group(1)], cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0:
            return failures + [f"neurogen show {m.group(1)} failed: {proc.stderr.strip()[-300:]}"]
        shown = [line.strip() for line in proc.stdout.splitlines()]
        failures += [f"show {m.group(1)}: line {line!r} not in the output"
                     for line in m.group(2).splitlines() if line.strip() not in shown]
    return failures


def main():
    text = DOC.read_text(encoding="utf-8")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        expected = {}
        for i, block in enumerate(toml_blocks(text)):
            path = Path(tmp) / f"example_{i:02d}.toml"
            path.write_text(block, encoding="utf-8")
            m = re.match(r"# error: (.*)\n", block)
            expected[path] = m.group(1).strip() if m else None
        for i, (expression, message) in enumerate(rejected_rows(text)):
            path = Path(tmp) / f"rejected_{i:02d}.toml"
            spec = f"[neuron]\nname = \"Rejected\"\n\n[state]\nv = 0\n\n[output]\nexpression = '{expression}'\n"
            path.write_text(spec, encoding="utf-8")
            expected[path] = message
        results = neurogen_check(list(expected))
        for path, want in expected.items():
            got = results[path.name]
            if want is None and got is not None:
                failures.append(f"{path.name}: expected to pass, got: {got}")
            elif want is not None and (got is None or want not in got):
                failures.append(f"{path.name}: expected an error containing {want!r}, got: {got}")
        n_blocks = sum(1 for p in expected if p.name.startswith("example"))
        print(f"{n_blocks} spec examples and {len(expected) - n_blocks} rejected constructs checked")

    failures += check_annotated(text)

    from neurogen.spec import RESERVED
    from neurogen.symbolic import CONSTANTS, FUNCTIONS

    functions = table_items(text, "functions")
    for name, (_, nargs, description) in FUNCTIONS.items():
        if not re.search(rf"\| `{name}\([^`]*\)` \| {nargs} \| {re.escape(description)} \|", functions):
            failures.append(f"function {name}: missing or different in the doc")
    documented = re.findall(r"\| `(\w+)\(", functions)
    failures += [f"function {n}: documented but not in FUNCTIONS" for n in documented if n not in FUNCTIONS]
    constants = re.findall(r"\| `(\w+)` \|", table_items(text, "constants"))
    if sorted(constants) != sorted(CONSTANTS):
        failures.append(f"constants: doc {sorted(constants)} != code {sorted(CONSTANTS)}")
    reserved = re.findall(r"`(\w+)`", table_items(text, "reserved"))
    if sorted(reserved) != sorted(RESERVED):
        failures.append(f"reserved names: doc {sorted(reserved)} != code {sorted(RESERVED)}")

    for f in failures:
        print("FAIL", f)
    print("ok" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
