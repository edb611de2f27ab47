"""Run the code in the user docs (docs/tutorial.md, docs/guide.md) as a reader would.

Every fenced block of a doc runs in document order, in one fresh temporary
directory per doc:

* ```` ```bash ```` blocks run with ``bash -eu -o pipefail`` in a subprocess (the
  current Python's ``bin/`` first on ``PATH``, so ``neurogen`` and ``python`` are
  this environment's);
* ```` ```python ```` blocks are ``exec``'d in this process, in one namespace per
  doc, with the temporary directory as the working directory;
* a block that directly follows a ``bash`` block (only blank lines between) and is
  neither ``bash`` nor ``python`` (``text``, ``toml``) is that command's expected
  standard output, compared exactly (trailing whitespace aside).  Anything between
  the two, such as ``<!-- output not checked -->`` (used for ``neurogen show``,
  whose format may change), turns the comparison off.  Outputs shown after
  ``python`` blocks are not compared: training results vary slightly.
* ``<!-- skip -->`` on the line before a block leaves it out (none do so now).

The guide's examples use the repository's bundled ``specs/`` and ``generated/``
(its readers run them from the repository root), so its directory gets a copy of
``specs/``, and ``generated`` is importable through ``tests/conftest.py``.
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
DOCS = REPO / "docs"
SKIP = "<!-- skip -->"
RUNNABLE = ("bash", "python")

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class Block:
    language: str
    code: str
    line: int  # line of the opening fence
    skipped: bool
    expected: str = None  # expected stdout (bash blocks followed by an output block)


def doc_blocks(path):
    """The fenced blocks of ``path`` that run, each with its expected output."""
    text = path.read_text(encoding="utf-8")
    found = []
    previous_end = None
    for m in _FENCE.finditer(text):
        language = m.group(1).strip().split(" ")[0]
        before = text[: m.start()]
        block = Block(
            language=language,
            code=m.group(2),
            line=before.count("\n") + 1,
            skipped=before.rstrip().endswith(SKIP),
        )
        adjacent = previous_end is not None and not text[previous_end : m.start()].strip()
        if adjacent and language not in RUNNABLE and found and found[-1].language == "bash":
            found[-1].expected = block.code
        found.append(block)
        previous_end = m.end()
    return [b for b in found if b.language in RUNNABLE]


def _normalize(text):
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_doc(path, workdir, monkeypatch):
    """Run every block of ``path`` in ``workdir``; fail with the block's location."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    namespace = {"__name__": f"__doc_{path.stem}__"}
    monkeypatch.chdir(workdir)
    ran = 0
    for block in doc_blocks(path):
        where = f"{path.relative_to(REPO)}:{block.line}"
        if block.skipped:
            continue
        ran += 1
        if block.language == "bash":
            result = subprocess.run(
                ["bash", "-eu", "-o", "pipefail", "-c", block.code],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, (
                f"{where}: exit status {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
            if block.expected is not None:
                assert _normalize(result.stdout) == _normalize(block.expected), (
                    f"{where}: the output shown in the doc is out of date; the command printed:\n"
                    f"{result.stdout}"
                )
        else:
            try:
                exec(compile(block.code, where, "exec"), namespace)
            except Exception as e:  # pragma: no cover - the message is the report
                raise AssertionError(f"{where}: {type(e).__name__}: {e}") from e
    return ran


@pytest.fixture
def isolated(monkeypatch):
    """Undo what the docs' Python blocks change in this process.

    Restores ``sys.path`` and ``os.environ``; forgets modules imported from the
    temporary directory (the tutorial's ``mypkg``) and the NengoDL builders they
    registered.  Modules imported from the repository (``generated``) stay imported,
    and so stay registered, as the rest of the test suite expects.
    """
    from nengo_dl.neuron_builders import SimNeuronsBuilder

    saved_path = list(sys.path)
    saved_environ = dict(os.environ)
    before = set(sys.modules)
    yield monkeypatch
    sys.path[:] = saved_path
    os.environ.clear()
    os.environ.update(saved_environ)
    new = [name for name in set(sys.modules) - before if _outside_repo_and_env(sys.modules[name])]
    for name in new:
        sys.modules.pop(name, None)
    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    for key, builder in list(impl.items()):
        if builder.__module__ in new or getattr(key, "__module__", None) in new:
            del impl[key]


def _outside_repo_and_env(module):
    file = getattr(module, "__file__", None)
    if not file:
        return False
    file = Path(file).resolve()
    return not (
        file.is_relative_to(REPO) or file.is_relative_to(Path(sys.prefix).resolve())
        or file.is_relative_to(Path(sys.base_prefix).resolve())
    )


@pytest.mark.parametrize("name", ["tutorial", "guide"])
def test_doc_blocks_parse(name):
    """Each doc has runnable blocks, none skipped, and its Python blocks compile."""
    path = DOCS / f"{name}.md"
    blocks = doc_blocks(path)
    assert {b.language for b in blocks} == {"bash", "python"}
    assert not [b.line for b in blocks if b.skipped], "skipped blocks"
    for block in blocks:
        if block.language == "python":
            compile(block.code, f"{path.name}:{block.line}", "exec")


@pytest.mark.slow
def test_tutorial(tmp_path, isolated):
    """docs/tutorial.md runs from an empty directory: new, check, show, build, nengo,
    NengoDL, rate training, spiking inference, surrogate training."""
    assert run_doc(DOCS / "tutorial.md", tmp_path, isolated) > 0
    assert (tmp_path / "mypkg" / "my_neuron.py").exists()


@pytest.mark.slow
def test_guide(tmp_path, isolated):
    """docs/guide.md runs from a directory holding the bundled specs."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    assert run_doc(DOCS / "guide.md", tmp_path, isolated) > 0
