"""Each chapter's ``.ipynb`` download is a plain notebook that runs anywhere.

Opened with nbformat alone (no MyST): no directive, role or target syntax is left,
every TeX command its maths uses is MathJax's own or defined in the notebook, the
code the book includes is there, glued values are in the text, and the notebook
executes from a temporary folder with ``myst_nb`` made unimportable. The
repository and launch buttons follow ``GITHUB_REPOSITORY``: checked on the book's
build (whichever way it was built) and on a one-page Sphinx project built both ways.
"""

import pytest

# The book extra (pip install -e '.[test,book]'); with `test` alone these skip.
pytest.importorskip("jupyter_book", reason="the book extra is not installed")

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import jupytext
import nbclient
import nbformat
from book_build import EXECUTED, HTML, ROOT, build, is_notebook, kernel_env, toc_files
from myst_nb.core.variables import format_plain_text

from softmax_lib import loops

NOTEBOOKS = [page for page in toc_files() if is_notebook(page)]
MACROS = ("diag", "one", "R", "softmax", "lse")  # _config.yml's mathjax3_config

# TeX commands MathJax 3 defines itself (its base, AMS and textmacros packages): the
# Greek letters and the commands of maths the chapters write. A chapter that uses a
# standard command not listed here fails test_math_uses_only_defined_macros; add it
# here once you have checked that MathJax knows it.
GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda "
    "mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
)
STANDARD = set(
    (
        GREEK + " approx begin bigl bigr Bigl Bigr bmod cdot cdots ddots dots ldots vdots "
        "end exp frac dfrac tfrac textstyle lesssim gtrsim ge geq gt in infty langle rangle "
        "le leq lt lVert rVert "
        "lvert rvert left right lfloor rfloor lceil rceil ln log max min sup inf lim "
        "mathbb mathbf mathcal mathrm mathit boldsymbol nabla ne neq odot otimes oplus "
        "operatorname overset underset overline underline hat tilde bar vec dot partial "
        "quad qquad sum prod int sqrt text textrm textbf times to top mid cup cap "
        "subset subseteq forall exists rightarrow leftarrow Rightarrow iff implies "
        "mapsto pm mp leqslant geqslant ll gg sim simeq equiv propto circ star ast "
        "displaystyle tag label notag nonumber"
    ).split()
)

DIRECTIVE = re.compile(r"^\s*(`{3,}|~{3,})\{|^\s*:{3,}", re.MULTILINE)
ROLE = re.compile(r"\{[A-Za-z][\w:+-]*\}`")
TARGET = re.compile(r"^\([^)\s]+\)=\s*$", re.MULTILINE)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.DOTALL)


@pytest.fixture(scope="session")
def site():
    result = build()
    assert result.returncode == 0, (result.stdout[-5000:], result.stderr[-5000:])
    return HTML


def download(site, page):
    nb = nbformat.read((site / "_sources" / page).with_suffix(".ipynb"), as_version=4)
    nbformat.validate(nb)
    return nb


def markdown(nb):
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def count(pattern, text):
    return len(re.findall(pattern, text, re.MULTILINE))


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_download_has_no_myst_syntax(site, page):
    nb = download(site, page)
    text = markdown(nb)
    prose = CODE_SPAN.sub("", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    assert not DIRECTIVE.search(text), DIRECTIVE.search(text)
    assert not ROLE.findall(prose)
    assert not TARGET.search(text)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*(from|import)\s+myst_nb", cell.source, re.M), cell.source
    assert not [c for c in nb.cells if c.cell_type == "code" and c.outputs]


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_math_uses_only_defined_macros(site, page):
    text = markdown(download(site, page))
    defined = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", text))
    assert set(MACROS) <= defined  # read from _config.yml, all of them
    used = set()
    for match in MATH.finditer(text):
        used |= set(re.findall(r"\\([A-Za-z]+)", match[1] or match[2]))
    assert not used - STANDARD - defined - {"newcommand"}, used - STANDARD - defined


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_included_code_and_glued_values_are_in_place(site, page):
    source = (ROOT / page).with_suffix(".md").read_text()
    text = markdown(download(site, page))
    assert count(r"^```\{literalinclude\}", source) == count(r"^From `[^`]+`:$", text)
    record = (EXECUTED / page).with_suffix(".glue.json")  # myst-nb's, of this build
    glued = (
        {k: v["data"] for k, v in json.loads(record.read_text()).items()}
        if (record.is_file())
        else {}
    )
    for key, fmt in re.findall(r"\{glue:text\}`([^`:]+):?([^`]*)`", source):
        assert format_plain_text(glued[key]["text/plain"], fmt) in text, key
    exercises = count(r"^```\{exercise\}", source)
    assert count(r"^\*\*Exercise \d+\*\*", text) == exercises
    assert text.count("<details>") >= count(r"^```\{solution-start\}", source)


def test_chapter_3_download_holds_the_library_source(site):
    text = markdown(download(site, "chapters/03_loops"))
    # chapter 3 includes it with :no-docstring: (_ext/literal_body.py): the code only
    lines = inspect.getsource(loops.softmax_vjp_row).splitlines(keepends=True)
    doc = ast.parse("".join(lines)).body[0].body[0]
    code = "".join(lines[: doc.lineno - 1] + lines[doc.end_lineno :]).strip()
    assert code in text


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_download_starts_with_macros_and_a_guarded_install(site, page):
    nb = download(site, page)
    assert "\\newcommand{\\diag}{\\operatorname{diag}}" in nb.cells[1].source
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    needed = ast.literal_eval(re.search(r"^needed = (\{.*\})$", setup, re.M)[1])
    assert needed["softmax_lib"].startswith("softmax_lib")
    assert "if missing:\n    %pip install" in setup
    assert (site.parent / "notebooks" / page).with_suffix(".ipynb").is_file()


def blocked_myst(tmp_path):
    """A folder that, first on PYTHONPATH, makes ``import myst_nb`` fail."""
    folder = tmp_path / "no_myst"
    (folder / "myst_nb").mkdir(parents=True)
    (folder / "myst_nb" / "__init__.py").write_text("raise ImportError('no MyST here')\n")
    return folder


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_download_executes_outside_the_book(site, page, tmp_path):
    """Run top to bottom in a temporary folder, without myst_nb, softmax_lib installed."""
    notebook = shutil.copy((site / "_sources" / page).with_suffix(".ipynb"), tmp_path)
    nb = nbformat.read(notebook, as_version=4)
    env = kernel_env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocked_myst(tmp_path)), env["PYTHONPATH"]])
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert not code[0].outputs  # everything importable: nothing installed
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]


# ---------------------------------------------------------------- launch buttons

LAUNCH = re.compile(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)/[^"]+)"')


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_book_buttons_follow_github_repository(site, page):
    html = (site / page).with_suffix(".html").read_text()
    repo = os.environ.get("GITHUB_REPOSITORY")  # the build ran with this environment
    launches = LAUNCH.findall(html)
    if not repo:
        assert not launches and "launch-buttons" not in html
        assert "github.com/" not in html.split('<div class="bd-article')[0]
        return
    assert f'href="https://github.com/{repo}"' in html
    assert f"https://colab.research.google.com/github/{repo}/blob/notebooks/{page}.ipynb" in (
        launches
    )


def one_page_project(tmp_path):
    """A Sphinx project with the book's theme and extension and one notebook page."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "_ext")!r})
        project = "A book"
        extensions = ["myst_nb", "book_ext"]
        html_theme = "sphinx_book_theme"
        nb_execution_mode = "force"
        mathjax3_config = {{"tex": {{"macros": {{"one": r"\\mathbf{{1}}"}}}}}}
        """)
    )
    (src / "index.md").write_text(
        textwrap.dedent("""\
        ---
        jupytext:
          text_representation:
            extension: .md
            format_name: myst
        kernelspec:
          name: python3
          display_name: Python 3
        ---
        # A page

        Ones: $\\one$. See {ref}`later`.

        (later)=
        ## A later section

        ```{code-cell} ipython3
        1 + 1
        ```
        """)
    )
    return src


@pytest.mark.parametrize("repo", [None, "owner/name"])
def test_launch_buttons_come_from_github_repository(tmp_path, repo):
    src, out = one_page_project(tmp_path), tmp_path / "build" / "html"
    env = {k: v for k, v in kernel_env().items() if k != "GITHUB_REPOSITORY"}
    if repo:
        env["GITHUB_REPOSITORY"] = repo
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(src), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    html = (out / "index.html").read_text()
    launches = LAUNCH.findall(html)
    nb = nbformat.read(out / "_sources" / "index.ipynb", as_version=4)
    install = nb.cells[2].source
    if repo is None:
        assert not launches and "launch-buttons" not in html and "github.com" not in html
        assert "'softmax_lib': 'softmax_lib'" in install
        assert "See A later section." in nb.cells[3].source  # plain text, no link
        return
    assert f'href="https://github.com/{repo}"' in html  # the repository button
    assert sorted(launches) == [
        f"https://colab.research.google.com/github/{repo}/blob/notebooks/index.ipynb",
        f"https://mybinder.org/v2/gh/{repo}/notebooks?urlpath=lab/tree/index.ipynb",
    ]
    assert f"softmax_lib@git+https://github.com/{repo}" in install
    link = "[A later section](https://owner.github.io/name/index.html#later)"
    assert f"See {link}." in nb.cells[3].source  # to the published page
    published = tmp_path / "build" / "notebooks"
    assert nbformat.read(published / "index.ipynb", as_version=4) == nb
    assert f"softmax_lib@git+https://github.com/{repo}" in (
        (published / "requirements.txt").read_text().split()
    )


def test_malformed_github_repository_fails_the_build(tmp_path):
    src, out = one_page_project(tmp_path), tmp_path / "build" / "html"
    env = {**kernel_env(), "GITHUB_REPOSITORY": "not a repository"}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "GITHUB_REPOSITORY='not a repository' is not of the form owner/name" in (result.stderr)


def test_unknown_markup_fails_the_export(tmp_path):
    """A directive with no plain form stops the build instead of reaching a reader."""
    src, out = one_page_project(tmp_path), tmp_path / "build" / "html"
    page = src / "index.md"
    page.write_text(page.read_text() + "\n```{topic} A topic\nText.\n```\n")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(out)],
        env=kernel_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "directive {topic} has no plain-notebook form" in result.stderr


def test_chapters_are_still_jupytext_notebooks():
    """The export reads the chapters with jupytext, as the book's build does."""
    for page in NOTEBOOKS:
        nb = jupytext.read((ROOT / page).with_suffix(".md"))
        assert any(c.cell_type == "code" for c in nb.cells), page
