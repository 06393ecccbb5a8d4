"""``literalinclude`` with ``:no-docstring:``: show a function's code without its docstring.

A chapter that includes a library function with ``:pyobject:`` shows its docstring
as raw reStructuredText (``.. math::``, ``:func:``, numpydoc headings), which reads
badly inside a code block and makes it long. The API page renders the same
docstrings properly, so a chapter can leave them out with this flag. Only the
docstring's lines are dropped; the code is still read from the library's source.
"""

import ast
import textwrap

import sphinx.directives.code as code
from docutils.parsers.rst import directives


def without_docstring(lines):
    """`lines` (one def or class, as read) minus the lines of its docstring."""
    tree = ast.parse(textwrap.dedent("".join(lines)))
    node = tree.body[0]
    first = node.body[0] if node.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return lines
    # ast line numbers are 1-based and relative to the object's first line
    return lines[: first.lineno - 1] + lines[first.end_lineno :]


class LiteralIncludeReader(code.LiteralIncludeReader):
    def pyobject_filter(self, lines, location=None):
        lines = super().pyobject_filter(lines, location=location)
        if "no-docstring" in self.options:
            if not self.options.get("pyobject"):
                raise ValueError(":no-docstring: needs :pyobject:")
            lines = without_docstring(lines)
        return lines


def setup(app):
    # LiteralInclude.run builds its reader from this module-level name.
    code.LiteralIncludeReader = LiteralIncludeReader
    code.LiteralInclude.option_spec["no-docstring"] = directives.flag
    return {"parallel_read_safe": True, "parallel_write_safe": True}
