"""Local Sphinx extension for the book.

Three jobs Jupyter Book 1.x does not do for us:

* Each chapter is a MyST Markdown notebook. The theme's download button offers an
  ``.ipynb`` only when a launch service is configured, and then copies the executed
  notebook, MyST markup and all. We write a plain notebook instead
  (``notebook_export``: no directives or roles, the included code present, glued
  values in place, the maths macros defined, an install cell first) and point the
  button at it. The same notebooks go to ``_build/notebooks/``, with a
  ``requirements.txt``, for the Pages workflow to publish on the ``notebooks``
  branch, where Colab and Binder open them.
* The repository link and the Colab/Binder launch buttons come from the repository
  the build runs for, ``GITHUB_REPOSITORY`` (``owner/name``, set by GitHub Actions
  and passed explicitly by ``.github/workflows/book.yml``); without it (a local
  build) there are none, since no address would be right. ``_config.yml`` is
  static, so this is done when the configuration is read.
* sphinx-thebe 0.3.1 registers its configuration script once per read phase, so a
  page can carry ``const THEBE_JS_URL = ...`` twice, which browsers reject with
  "Identifier 'THEBE_JS_URL' has already been declared". We drop duplicate scripts.
"""

import os
import re
import shutil
from pathlib import Path

import nbformat
from notebook_export import Exporter
from sphinx.errors import ExtensionError

NOTE = (
    "*From `{source}` of the book {title}: the "
    "same text and code, with the library's source included and the numbers of the "
    "book's own build in the text. Run it top to bottom; the first code cell installs "
    "what is missing.*"
)
#: GitHub's owner and repository names: letters, digits, '-', and for repositories '.', '_'
REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*)/[A-Za-z0-9._-]+")
#: the branch that the Pages workflow publishes ``_build/notebooks/`` to
NOTEBOOK_BRANCH = "notebooks"
COLAB_URL = "https://colab.research.google.com"
BINDERHUB_URL = "https://mybinder.org"


def repository():
    """``owner/name`` from ``GITHUB_REPOSITORY``, None when unset or empty.

    Raises
    ------
    sphinx.errors.ExtensionError
        If it is set to something that is not ``owner/name``.
    """
    value = os.environ.get("GITHUB_REPOSITORY", "")
    if value == "":
        return None
    if not REPOSITORY.fullmatch(value):
        raise ExtensionError(
            f"GITHUB_REPOSITORY={value!r} is not of the form owner/name (unset it for a "
            "local build without repository and launch buttons)"
        )
    return value


def book_url(repo):
    """The address GitHub Pages serves the book of `repo` at (project site)."""
    owner, name = repo.split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def install_requirement(repo):
    """The pip requirement for softmax_lib: from its repository when known."""
    return f"softmax_lib@git+https://github.com/{repo}" if repo else "softmax_lib"


def configure_repository(app, config):
    """Repository button and Colab/Binder launch buttons from ``GITHUB_REPOSITORY``.

    sphinx-book-theme builds the launch URLs from ``repository_url``,
    ``repository_branch`` and ``path_to_docs`` (the notebook's path in that
    branch); the published notebooks sit at the branch's root as ``<page>.ipynb``.
    """
    repo = repository()
    options = config.html_theme_options
    buttons = dict(options.get("launch_buttons") or {})
    if repo is None:
        options.update(use_repository_button=False, repository_url="")
        buttons.update(colab_url="", binderhub_url="")
    else:
        options.update(
            repository_url=f"https://github.com/{repo}",
            use_repository_button=True,
            repository_branch=NOTEBOOK_BRANCH,
            path_to_docs="",
        )
        buttons.update(
            colab_url=COLAB_URL, binderhub_url=BINDERHUB_URL, notebook_interface="jupyterlab"
        )
    options["launch_buttons"] = buttons


def _is_notebook(app, pagename):
    return "kernelspec" in app.env.metadata.get(pagename, {})


def _is_md_notebook(app, pagename, doctree):
    return (
        doctree is not None
        and _is_notebook(app, pagename)
        and Path(app.env.doc2path(pagename)).suffix == ".md"
    )


def offer_ipynb_download(app, pagename, templatename, context, doctree):
    """Point the download button at ``_sources/<page>.ipynb`` (written below)."""
    if _is_md_notebook(app, pagename, doctree):
        context["ipynb_source"] = pagename + ".ipynb"


def write_plain_notebook(app, pagename, templatename, context, doctree):
    """Write the plain notebook (after the theme, which copies the executed one there
    when launch buttons are on), and launch the ``.ipynb``, not the ``.md``."""
    if not _is_md_notebook(app, pagename, doctree):
        return
    repo = repository()
    url = book_url(repo) if repo else None
    source = Path(app.env.doc2path(pagename))
    relname = source.relative_to(app.srcdir).as_posix()
    name = app.config.html_title or app.config.project  # Jupyter Book sets html_title
    title = f"*{name}*" if url is None else f"[{name}]({url})"
    note = NOTE.format(source=relname, title=title)
    exporter = Exporter(app, pagename, url, install_requirement(repo))
    nb = exporter.notebook(note)
    for target in (
        Path(app.outdir, "_sources", pagename).with_suffix(".ipynb"),
        Path(app.outdir).parent.joinpath("notebooks", pagename).with_suffix(".ipynb"),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    app.book_notebook_requirements |= set(exporter.requirements)
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if button.get("url"):
                    button["url"] = button["url"].replace(f"{pagename}.md", f"{pagename}.ipynb")


def start_notebook_folder(app):
    """An empty ``_build/notebooks/`` for this build's plain notebooks."""
    folder = Path(app.outdir).parent / "notebooks"
    if folder.exists():
        shutil.rmtree(folder)
    app.book_notebook_requirements = set()


def finish_notebook_folder(app, exception):
    """``requirements.txt`` beside the notebooks: what Binder installs first."""
    if exception is not None or app.builder.name != "html":
        return
    folder = Path(app.outdir).parent / "notebooks"
    requirements = sorted(getattr(app, "book_notebook_requirements", ()))
    if folder.is_dir() and requirements:
        folder.joinpath("requirements.txt").write_text("\n".join(requirements) + "\n")


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """Keep the first of identical ``<script>`` entries (see module docstring)."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # The copies differ only in filename: None in one, "" in the other.
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", script) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def tuple_nitpick_ignore(app, config):
    """YAML gives ``[type, target]`` lists; Sphinx looks up ``(type, target)`` tuples."""
    config.nitpick_ignore = [tuple(item) for item in config.nitpick_ignore]


def setup(app):
    app.connect("config-inited", tuple_nitpick_ignore)
    app.connect("config-inited", configure_repository)
    app.connect("builder-inited", start_notebook_folder)
    # The theme builds its header buttons at priority 501 (launch buttons first,
    # copying the executed notebook to _sources/ when they are on, then downloads).
    app.connect("html-page-context", offer_ipynb_download, priority=400)
    app.connect("html-page-context", write_plain_notebook, priority=502)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("build-finished", finish_notebook_folder)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
