"""Build the book once per test session, strictly, exactly as ``make book`` does.

Both ``test_book.py`` and ``test_browser.py`` need the built site; :func:`build` is
cached so the (half-minute) build runs once however many tests ask for it.
"""

import functools
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute"
BUILD_COMMAND = ["build", str(ROOT), "--all", "-W", "-n", "--keep-going"]


@functools.cache
def build():
    """Run ``jupyter-book build . --all -W -n --keep-going``; the CompletedProcess."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run(
        [str(jupyter_book), *BUILD_COMMAND],
        cwd=ROOT,
        env=kernel_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )


def kernel_env():
    """The environment for processes that run chapters: softmax_lib from this tree.

    Kernels (and autodoc) import softmax_lib from ROOT, ahead of the editable
    install: in a variant tree (``make test-nosimd``) that is the variant's library,
    so its chapters execute on its kernels. ``NPY_DISABLE_CPU_FEATURES`` and
    ``SOFTMAX_LIB_ISA`` pass through to the kernels as they are.
    """
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}


def toc_files():
    """Every page of ``_toc.yml`` (format jb-book), in order, without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [entry["file"] for entry in part["chapters"]]
    return files


def is_notebook(page):
    """True when the page's MyST source is a notebook (has a kernelspec)."""
    head = (ROOT / page).with_suffix(".md").read_text().split("---", 2)
    return len(head) == 3 and "kernelspec:" in head[1]
