"""The package as an importer sees it: top-level exports, the backend, the README."""

import importlib.util
import inspect
import pathlib
import re

import numpy as np

import softmax_lib

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_top_level_uses_the_native_library_when_it_is_built():
    built = importlib.util.find_spec("softmax_lib._native") is not None
    assert softmax_lib.BACKEND == ("native" if built else "vectorized")
    module = getattr(softmax_lib, softmax_lib.BACKEND)
    for name in ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp", "softmax_jacobian"):
        # the array-API/dask dispatch wraps the module's function (softmax_lib._frontends)
        assert inspect.unwrap(getattr(softmax_lib, name)) is inspect.unwrap(getattr(module, name))


def test_everything_in_all_exists():
    for name in softmax_lib.__all__:
        assert hasattr(softmax_lib, name), name


def test_readme_python_examples_run_and_say_what_they_claim():
    """Each ```python block of the README runs; its `# [..]` comments are checked."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README should show how to use softmax_lib"
    for block in blocks:
        namespace = {}
        exec(compile(block, str(README), "exec"), namespace)
        # A line `name = ...  # [a, b]` claims the value of `name`.
        for name, claim in re.findall(r"^(\w+) = .*# \[([^\]]+)\]", block, re.M):
            values = claim.split(",")
            want = np.array([float(v) for v in values])
            # A claim is rounded to the decimals it prints: within half a unit of its last
            # one, plus the computation's own error (delta ~ 1e-14 here, see conftest).
            half_unit = max(0.5 * 10.0 ** -len(v.strip().partition(".")[2]) for v in values)
            np.testing.assert_allclose(namespace[name], want, rtol=0, atol=half_unit + 1e-13)
