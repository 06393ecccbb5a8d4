"""The book builds strictly, every chapter executes, and its downloads work.

The build is the one ``make book`` runs (``-W -n --keep-going``: any warning,
broken reference or cell error fails it), done once per session.
"""

import pytest

# The book extra (pip install -e '.[test,book]'); with `test` alone these skip.
pytest.importorskip("jupyter_book", reason="the book extra is not installed")

import re
import subprocess
import sys

import jupytext
import matplotlib.image
import nbformat
import numpy as np
from book_build import EXECUTED, HTML, ROOT, build, is_notebook, kernel_env, toc_files

PAGES = toc_files()
NOTEBOOKS = [page for page in PAGES if is_notebook(page)]


@pytest.fixture(scope="session")
def site():
    result = build()
    assert result.returncode == 0, (result.stdout[-5000:], result.stderr[-5000:])
    return HTML


def test_build_has_no_warnings(site):
    output = build().stdout + build().stderr
    assert ": WARNING:" not in output
    assert "build succeeded" in output


def test_every_chapter_is_a_notebook_with_code():
    assert len(NOTEBOOKS) >= 7  # chapters 0-6; api and references are plain pages
    for page in NOTEBOOKS:
        assert "```{code-cell}" in (ROOT / page).with_suffix(".md").read_text(), page


@pytest.mark.parametrize("page", PAGES)
def test_toc_page_was_built(site, page):
    html = (site / page).with_suffix(".html")
    assert html.is_file()
    assert "<h1>" in html.read_text()


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_chapter_executed_without_errors(site, page):
    executed = nbformat.read((EXECUTED / page).with_suffix(".ipynb"), as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)
    outputs = [out for cell in code for out in cell.outputs]
    assert outputs, "no cell produced output"
    assert not [out for out in outputs if out.output_type == "error"]
    assert not [out for out in outputs if out.get("name") == "stderr"]
    html = (site / page).with_suffix(".html").read_text()
    assert 'class="cell_output' in html
    assert not re.search(r'class="output (traceback|error|stderr)', html)


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_chapter_offers_a_clean_ipynb(site, page):
    """The download holds the chapter's code cells, after its setup cell (whose
    install and glue stand-in are in tests/test_notebooks.py, with the rest)."""
    notebook = (site / "_sources" / page).with_suffix(".ipynb")
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    source = jupytext.read((ROOT / page).with_suffix(".md"))
    plain = [c.source for c in nb.cells if c.cell_type == "code"][1:]
    glue_import = re.compile(r"^from myst_nb import glue[ \t]*$", re.M)
    assert plain == [
        glue_import.sub("", c.source).strip("\n") for c in source.cells if c.cell_type == "code"
    ]
    assert not any(cell.get("outputs") for cell in nb.cells)
    html = (site / page).with_suffix(".html").read_text()
    assert f"_sources/{page}.ipynb" in html.replace("../", "")  # the download button


def test_figures_have_solid_backgrounds(site):
    images = sorted((site / "_images").glob("*.png"))
    assert images, "the book should have figures"
    for png in images:
        pixels = matplotlib.image.imread(png)
        if pixels.shape[-1] == 4:
            assert np.all(pixels[..., 3] == 1), f"{png.name} has transparent pixels"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_served_locally_and_thebe_configured_once(site, page):
    html = (site / page).with_suffix(".html").read_text()
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert not [src for src in sources if "://" in src or src.startswith("//")]
    assert html.count("const THEBE_JS_URL") <= 1
    if 'class="math' not in html:
        return  # Sphinx loads MathJax only on pages with math
    mathjax = [src for src in sources if "mathjax" in src.lower()]
    assert len(mathjax) == 1
    assert (site / page).parent.joinpath(mathjax[0].split("?")[0]).resolve().is_file()
    assert "\\operatorname{diag}" in html  # the macros are defined once, in the config


def test_chapters_import_this_trees_library(tmp_path):
    """In a variant tree the chapters must run the variant's C library, not main's."""
    code = "import softmax_lib, sys; sys.stdout.write(softmax_lib.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=kernel_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where == str(ROOT / "softmax_lib" / "__init__.py")
