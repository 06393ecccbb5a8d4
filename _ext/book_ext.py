"""Local Sphinx extension for the book.

Two jobs Jupyter Book 1.x does not do for us:

* Each chapter is a MyST Markdown notebook. The theme's download button offers an
  ``.ipynb`` only when a launch service is configured, and then copies the executed
  notebook. We write a clean notebook generated from the source with jupytext
  instead (it runs in plain Jupyter or Colab) and point the button at it.
* sphinx-thebe 0.3.1 registers its configuration script once per read phase, so a
  page can carry ``const THEBE_JS_URL = ...`` twice, which browsers reject with
  "Identifier 'THEBE_JS_URL' has already been declared". We drop duplicate scripts.
"""

from pathlib import Path

import jupytext
import nbformat

NOTE = (
    "*Generated from `{source}` of the softmax_lib book. It needs `softmax_lib` "
    "installed with its `book` extra: `pip install -e '.[book]'` in the project.*"
)


def _is_notebook(app, pagename):
    return "kernelspec" in app.env.metadata.get(pagename, {})


def notebook_for(source, relname):
    """A clean, runnable ``.ipynb`` (nbformat node) from the MyST source `source`."""
    nb = jupytext.read(source, fmt="md:myst")
    nb.metadata.pop("jupytext", None)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(NOTE.format(source=relname)))
    nbformat.validate(nb)
    return nb


def add_ipynb_download(app, pagename, templatename, context, doctree):
    """Write ``_sources/<page>.ipynb`` and offer it in the download button."""
    if doctree is None or not _is_notebook(app, pagename):
        return
    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".md":
        return
    target = Path(app.outdir, "_sources", pagename).with_suffix(".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    relname = source.relative_to(app.srcdir).as_posix()
    nbformat.write(notebook_for(source, relname), target)
    context["ipynb_source"] = pagename + ".ipynb"


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
    # Before sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", add_ipynb_download, priority=400)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
