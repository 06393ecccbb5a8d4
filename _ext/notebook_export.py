"""Plain Jupyter notebooks from the book's MyST chapters, for the download button.

A chapter's source is a MyST notebook: its Markdown holds directives and roles that
only Sphinx understands, and its maths uses the macros of ``_config.yml``. A reader
who downloads the chapter opens it in plain JupyterLab or Colab, so each is turned
into plain Markdown here, resolved the way the book itself resolves it:

* ``{literalinclude}``: the included source as a fenced code block, cut by Sphinx's
  own ``LiteralIncludeReader`` with the options parsed by MyST's own parser and
  validated against the directive's option spec; only the options the chapters
  use are accepted (others fail the build, see ``INCLUDE_OPTIONS``). It is shown,
  not run: the notebook runs the installed library, and a definition taken out of
  its module (``class Softmax(AlongAxis)``, C code) would not run on its own.
* ``{ref}``, ``{numref}``, ``{prf:ref}``, ``{cite:p}``, ``{cite:t}``: the text the
  book shows, from the Sphinx domains' own ``resolve_xref``; a link to the book's
  page when the book's address is known, else plain text.
* ``{glue:text}`` (and ``{glue}``, ``{glue:md}``): the glued values of this build,
  from myst-nb's record of them, formatted by myst-nb's own formatter.
* exercises and solutions: bold-titled paragraphs, solutions in ``<details>``
  (their code cells stay, collapsed in JupyterLab, so the notebook still runs top
  to bottom); ``{prf:...}``: bold-titled paragraphs; tabs, admonitions and
  ``{math}``: their plain Markdown counterparts.
* the maths macros: a first Markdown cell defines them, read from the Sphinx
  configuration (``mathjax3_config``); a first code cell installs what the chapter
  imports and is missing (``softmax_lib`` among it); ``from myst_nb import glue``
  becomes a small local ``glue`` that displays its value.

Any other directive or role fails the build with its name and line
(:class:`ExportError`), so a new kind of markup in a chapter gets a plain form here
before it reaches a reader.
"""

from __future__ import annotations

import ast
import copy
import re
import sys
from pathlib import Path

import nbformat
import sphinx.directives.code as sphinx_code
from docutils import nodes, utils
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser, directives
from docutils.parsers.rst.languages import en
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from myst_nb.core.variables import format_plain_text
from myst_nb.ext.glue.crossref import read_glue_cache
from myst_parser.parsers.directives import parse_directive_text
from sphinx.addnodes import pending_xref
from sphinx.util.nodes import split_explicit_title

#: literalinclude options with a plain form here (the rest would change what is
#: shown: captions, emphasis, line numbers, diffs); anything else fails the build.
INCLUDE_OPTIONS = {
    "language",
    "pyobject",
    "start-after",
    "start-at",
    "end-before",
    "end-at",
    "lines",
    "dedent",
    "no-docstring",  # _ext/literal_body.py: the code of a :pyobject: without its docstring
}
ADMONITIONS = {
    "admonition",
    "attention",
    "caution",
    "danger",
    "error",
    "hint",
    "important",
    "note",
    "seealso",
    "tip",
    "warning",
}
#: roles resolved as cross-references: (domain, type) as Sphinx names them
XREF_ROLES = {
    "ref": ("std", "ref"),
    "numref": ("std", "numref"),
    "doc": ("std", "doc"),
    "eq": ("math", "eq"),
    "prf:ref": ("prf", "ref"),
    "cite:p": ("cite", "p"),
    "cite:t": ("cite", "t"),
    "mod": ("py", "mod"),
    "func": ("py", "func"),
    "class": ("py", "class"),
}
#: pip requirements of imported top-level modules whose names differ from them
PIP_NAMES = {"dask": "dask[array,distributed]"}
#: importable wherever a notebook runs (Jupyter's own kernel)
ALWAYS_THERE = {"IPython", "ipykernel"}

# A role, or an inline code span (kept as it is: `{ref}` in backticks is not a role).
ROLE = re.compile(
    r"\{(?P<name>[A-Za-z][\w:+-]*)\}`(?P<content>[^`]*)`|(?P<code>(?P<ticks>`+).+?(?P=ticks))",
    re.DOTALL,
)
TARGET = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
MATH_LABEL = re.compile(r"^(\$\$)\s*\([^)\s]+\)\s*$")
GLUE_IMPORT = re.compile(r"^from myst_nb import glue[ \t]*$", re.MULTILINE)

GLUE_SHIM = '''\
def glue(name, value, display=True):
    """The book's myst_nb.glue: its values are already in this notebook's text."""
    if display:
        IPython.display.display(value)'''


class ExportError(Exception):
    """A chapter uses markup that has no plain-notebook form here (yet)."""


class Exporter:
    """Turns one chapter (Sphinx docname `docname`) into a plain notebook.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The running build, after its read phase (every label and citation known).
    docname : str
        The chapter, e.g. ``"chapters/03_loops"``.
    book_url : str or None
        The published book's address (ends in ``/``): links go there; None: plain text.
    install : str
        The pip requirement that installs softmax_lib.
    """

    def __init__(self, app, docname: str, book_url: str | None, install: str):
        self.app, self.env, self.docname = app, app.env, docname
        self.book_url, self.install = book_url, install
        self.source = Path(self.env.doc2path(docname))
        # myst-nb's own record of the chapter's glued values, written when it ran
        glued = read_glue_cache(str(self.env.mystnb_config.output_folder), docname)
        self.glue = {key: output["data"] for key, output in glued.items()}
        self.requirements: list[str] = []  # pip requirements of the install cell
        # files of the chapter's own folder it includes (e.g. src/naive_vjp.c), which a
        # downloaded notebook must recreate: path relative to the chapter -> text
        self.local_files: dict[str, str] = {}
        self.solution: str | None = None  # the label of the open {solution-start}
        self.exercises: dict[str, str] = {}  # label -> "Exercise N"
        self._reporter = utils.new_document(str(self.source), get_default_settings(Parser))

    # ---------------------------------------------------------------- notebook
    def notebook(self, note: str) -> nbformat.NotebookNode:
        """The plain notebook: macros, install cell, then the chapter's cells."""
        import jupytext

        nb = jupytext.read(self.source, fmt="md:myst")
        nb.metadata.pop("jupytext", None)
        cells = []
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cells += self._markdown_cell(cell)
            else:
                cells.append(self._code_cell(cell))
        if self.solution is not None:
            raise self._error(f"{{solution-start}} {self.solution} has no {{solution-end}}")
        new = nbformat.v4
        head = [
            new.new_markdown_cell(note),
            new.new_markdown_cell(macros_cell(self.app.config)),
            new.new_code_cell(self._setup_code(nb)),
        ]
        nb.cells = head + [c for c in cells if c.source.strip() or c.cell_type == "code"]
        nbformat.validate(nb)
        return nb

    def _code_cell(self, cell):
        cell = copy.deepcopy(cell)
        cell.source = GLUE_IMPORT.sub("", cell.source).strip("\n")
        if "myst_nb" in cell.source:
            raise self._error(f"a code cell uses myst_nb beyond glue: {cell.source[:80]!r}")
        if self.solution is not None:  # collapsed in JupyterLab, as the prose is
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
            cell.metadata.setdefault("tags", []).append("solution")
        return cell

    def _setup_code(self, nb) -> str:
        """The first code cell: install what is missing, define ``glue`` if used."""
        needed = {"softmax_lib": self.install}
        for cell in nb.cells:
            if cell.cell_type == "code":
                for module in _imports(cell.source):
                    if module not in needed and module not in ALWAYS_THERE | {"myst_nb"}:
                        needed[module] = PIP_NAMES.get(module, module)
        self.requirements = list(needed.values())
        lines = [
            "# Installs what this chapter imports and this Python lacks (e.g. on Colab).",
            "import importlib.util, shlex",
            f"needed = {needed!r}",
            "missing = [pip for module, pip in needed.items()",
            "           if importlib.util.find_spec(module) is None]",
            "if missing:",
            "    %pip install {shlex.join(missing)}",
        ]
        if self.local_files:  # the chapter's own files its code reads, as the text shows them
            lines += [
                "from pathlib import Path",
                f"for name, text in {self.local_files!r}.items():",
                "    Path(name).parent.mkdir(parents=True, exist_ok=True)",
                "    Path(name).write_text(text)",
            ]
        if any(GLUE_IMPORT.search(c.source) for c in nb.cells if c.cell_type == "code"):
            lines += ["import IPython.display", "", GLUE_SHIM]
        return "\n".join(lines)

    # ---------------------------------------------------------------- markdown
    def _markdown_cell(self, cell):
        """One Markdown cell -> Markdown cells (a solution's gates may split it)."""
        pieces = self._blocks(cell.source, cell_level=True)
        out, text = [], []

        def flush():
            if text:
                body = "\n".join(text).strip("\n")
                if self.solution is not None and body.strip():
                    title = f"Solution to {self.exercises.get(self.solution, 'the exercise')}"
                    body = f"<details>\n<summary>{title}</summary>\n\n{body}\n\n</details>"
                out.append(nbformat.v4.new_markdown_cell(body))
                text.clear()

        for piece in pieces:
            if isinstance(piece, tuple):  # a gate: ("solution-start", label) / ("solution-end",)
                flush()
                if piece[0] == "solution-start":
                    if self.solution is not None:
                        raise self._error(f"nested {{solution-start}} {piece[1]}")
                    self.solution = piece[1]
                elif self.solution is None:
                    raise self._error("{solution-end} without {solution-start}")
                else:
                    self.solution = None
            else:
                text.append(piece)
        flush()
        return out

    def _blocks(self, source: str, cell_level: bool = False) -> list:
        """Markdown text with its fenced blocks and inline markup turned plain."""
        md = MarkdownIt("commonmark").use(colon_fence_plugin)
        lines = source.split("\n")
        fences = [t for t in md.parse(source) if t.type in ("fence", "colon_fence") and t.map]
        out, last = [], 0
        for token in fences:
            start, end = token.map
            out.append(self._inline("\n".join(lines[last:start])))
            info = token.info.strip()
            match = re.match(r"\{(?P<name>[^}]+)\}\s*(?P<arg>.*)$", info)
            if match is None:  # a plain code block: kept as it is
                out.append("\n".join(lines[start:end]))
            else:
                content = token.content
                if token.type == "colon_fence" and content.startswith(":::"):
                    content = "\n" + content  # a nested fence, not options (as MyST does)
                converted = self._directive(match["name"], match["arg"], content, start)
                if isinstance(converted, tuple) and not cell_level:
                    raise self._error(f"{{{match['name']}}} must be at the top level")
                out.append(converted)
            last = end
        out.append(self._inline("\n".join(lines[last:])))
        return out

    def _plain(self, source: str) -> str:
        """Markdown with no gates in it (directive bodies)."""
        return "\n".join(self._blocks(source))

    def _inline(self, text: str) -> str:
        kept = []
        for line in text.split("\n"):
            if TARGET.match(line) or line.startswith("%"):  # targets and MyST comments
                continue
            kept.append(MATH_LABEL.sub(r"\1", line))
        return ROLE.sub(self._role, "\n".join(kept))

    # ---------------------------------------------------------------- directives
    def _directive(self, name: str, argument: str, content: str, line: int):
        cls = self._directive_class(name, line)
        try:
            parsed = parse_directive_text(cls, argument, content, line=line)
        except Exception as exc:
            raise self._error(f"{{{name}}}: {exc}", line) from exc
        if parsed.warnings:
            raise self._error(f"{{{name}}}: {parsed.warnings[0].msg}", line)
        args, options, body = parsed.arguments, parsed.options, "\n".join(parsed.body)
        title = " ".join(args)
        if name == "literalinclude":
            return self._literalinclude(args[0], options, line)
        if name in ("solution-start", "solution-end"):
            return (name, *args)
        if name == "exercise":
            label = options.get("label", "")
            number = self._number("exercise", label) or "Exercise"
            self.exercises[label] = number
            heading = f"**{number}**" + (f" ({title})" if title else "")
            return f"{heading}\n\n{self._plain(body)}"
        if name == "solution":
            target = self.exercises.get(args[0] if args else "", "the exercise")
            return (
                f"<details>\n<summary>Solution to {target}</summary>\n\n"
                f"{self._plain(body)}\n\n</details>"
            )
        if name.startswith("prf:"):
            kind = name[4:]
            if kind == "proof":
                return f"*Proof.* {self._plain(body)} ∎"
            label = options.get("label", "")
            number = self._number(kind, label) or kind.title()
            heading = f"**{number}**" + (f" **({title})**" if title else "")
            return f"{heading} {self._plain(body)}"
        if name == "tab-set":
            return self._plain(body)
        if name == "tab-item":
            return f"**{title}**\n\n{self._plain(body)}"
        if name in ADMONITIONS:
            heading = title if name == "admonition" else name.title()
            text = f"**{heading}**\n\n{self._plain(body)}"
            return "\n".join(f"> {row}".rstrip() for row in text.split("\n"))
        if name == "math":
            return f"$$\n{body}\n$$"
        if name in ("code-block", "code", "sourcecode"):
            return f"```{title}\n{body}\n```"
        raise self._error(f"directive {{{name}}} has no plain-notebook form", line)

    def _directive_class(self, name: str, line: int):
        if ":" in name:
            domain, kind = name.split(":", 1)
            known = domain in self.env.domains
            cls = self.env.get_domain(domain).directive(kind) if known else None
        else:
            cls, _ = directives.directive(name, en, self._reporter)
        if cls is None:
            raise self._error(f"unknown directive {{{name}}}", line)
        return cls

    def _literalinclude(self, filename: str, options: dict, line: int) -> str:
        unknown = set(options) - INCLUDE_OPTIONS
        if unknown:
            raise self._error(
                f"{{literalinclude}} {filename}: option(s) {sorted(unknown)} have no "
                f"plain-notebook form (supported: {sorted(INCLUDE_OPTIONS)})",
                line,
            )
        relname, path = self.env.relfn2path(filename, self.docname)
        folder = self.source.parent.resolve()
        if Path(path).resolve().is_relative_to(folder):  # the chapter's, not the library's
            local = Path(path).resolve().relative_to(folder).as_posix()
            self.local_files[local] = Path(path).read_text()
        try:
            # looked up at call time: literal_body.py replaces it (for :no-docstring:)
            reader = sphinx_code.LiteralIncludeReader
            text, _ = reader(path, dict(options), self.app.config).read()
        except Exception as exc:
            raise self._error(f"{{literalinclude}} {filename}: {exc}", line) from exc
        language = options.get("language", "")
        shown = Path(relname).as_posix().lstrip("./")
        return f"From `{shown}`:\n\n```{language}\n{text.rstrip()}\n```"

    def _number(self, kind: str, label: str) -> str | None:
        """'Exercise 2', 'Theorem 1': the number the book gives `label`, if any."""
        for ids in self.env.toc_fignumbers.get(self.docname, {}).values():
            if label and label in ids:
                return f"{kind.title()} {'.'.join(map(str, ids[label]))}"
        return None

    # ---------------------------------------------------------------- roles
    def _role(self, match: re.Match) -> str:
        if match["code"]:
            return match["code"]
        name, content = match["name"], match["content"]
        if name.startswith("glue"):
            return self._glue(name, content)
        if name in ("math",):
            return f"${content}$"
        if name not in XREF_ROLES:
            raise self._error(f"role {{{name}}} has no plain-notebook form")
        domain, kind = XREF_ROLES[name]
        explicit, title, target = split_explicit_title(content)
        if name in ("mod", "func", "class"):  # API names: code, and no link
            return f"`{target.lstrip('~')}`"
        node = pending_xref(
            "",
            refdomain=domain,
            reftype=kind,
            reftarget=target,
            refexplicit=explicit,
            refdoc=self.docname,
            refwarn=True,
        )
        contnode = nodes.inline(title, title)
        resolved = self.env.get_domain(domain).resolve_xref(
            self.env, self.docname, self.app.builder, kind, target, node, contnode
        )
        if resolved is None:
            raise self._error(f"{{{name}}}`{content}` does not resolve")
        text = resolved.astext()
        refs = (
            list(resolved.findall(nodes.reference))
            if not isinstance(resolved, nodes.reference)
            else [resolved]
        )
        uri = refs[0].get("refuri") if refs else None
        if refs and refs[0].get("refid") and not uri:
            uri = f"{Path(self.docname).name}.html#{refs[0]['refid']}"
        if self.book_url is None or not uri:
            return text
        page = (Path(self.docname).parent / uri).as_posix()
        return f"[{text}]({self.book_url}{_normalise(page)})"

    def _glue(self, name: str, content: str) -> str:
        key, _, fmt = content.rpartition(":") if ":" in content else (content, "", "")
        if "::" in key:
            raise self._error(f"{{{name}}}`{content}`: glue from another page is not supported")
        if name not in ("glue", "glue:", "glue:any", "glue:text", "glue:md"):
            raise self._error(f"role {{{name}}} has no plain-notebook form")
        if key not in self.glue:
            raise self._error(f"{{{name}}}`{content}`: no glued value {key!r}")
        data = self.glue[key]
        if name == "glue:md" and "text/markdown" in data:
            return data["text/markdown"]
        if "text/plain" not in data:
            raise self._error(f"{{{name}}}`{content}`: {key!r} has no text/plain value")
        return format_plain_text(data["text/plain"], fmt if name == "glue:text" else "")

    def _error(self, message: str, line: int | None = None) -> ExportError:
        where = f"{self.source}" + (f" (Markdown cell line {line + 1})" if line else "")
        return ExportError(f"{where}: {message}")


def _normalise(path: str) -> str:
    parts = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _imports(code: str) -> list[str]:
    """The third-party top-level modules a code cell imports (not the stdlib)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython syntax (magics): no imports of ours use it
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module.split(".")[0])
    return [m for m in dict.fromkeys(found) if m not in sys.stdlib_module_names]


def macros_cell(config) -> str:
    r"""A Markdown cell defining the book's TeX macros (``mathjax3_config``) for MathJax.

    Jupyter and Colab typeset a notebook's Markdown with MathJax, and a
    ``\newcommand`` in one cell's maths holds for the whole notebook.
    """
    macros = (config.mathjax3_config or {}).get("tex", {}).get("macros", {})
    lines = []
    for name, body in macros.items():
        if isinstance(body, list):  # [definition, number of arguments]
            lines.append(f"\\newcommand{{\\{name}}}[{body[1]}]{{{body[0]}}}")
        else:
            lines.append(f"\\newcommand{{\\{name}}}{{{body}}}")
    defined = "".join(lines)
    return f"*The book's maths macros, defined for this notebook:* ${defined}$"
