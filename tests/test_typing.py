"""The public API is annotated (PEP 561: the wheel ships ``py.typed``), so that a
user's type checker sees real signatures; mypy checks the package in ``make lint``."""

import importlib
import inspect
from pathlib import Path

import pytest

import softmax_lib

MODULES = [
    "softmax_lib",
    "softmax_lib.loops",
    "softmax_lib.vectorized",
    "softmax_lib.native",
    "softmax_lib.layers",
    "softmax_lib.losses",
    "softmax_lib.gradcheck",
    "softmax_lib.symbolic",
    "softmax_lib.exp_accuracy",
    "softmax_lib.benchmark",
    "softmax_lib.report",
    "softmax_lib.array_api",
    "softmax_lib.dask_blockwise",
]


def public_functions(name):
    """(qualified name, function) of every public function and method defined in module `name`."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # the native module of an install without a C compiler
        pytest.skip(f"{name} cannot be imported here: {exc}")
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for attr in names:
        obj = getattr(module, attr)
        if getattr(obj, "__module__", None) != name:
            continue  # re-exported: checked where it is defined
        if inspect.isclass(obj):
            for key, member in vars(obj).items():
                if inspect.isfunction(member) and (not key.startswith("_") or key == "__init__"):
                    yield f"{attr}.{key}", member
        elif inspect.isfunction(obj):
            yield attr, inspect.unwrap(obj)


@pytest.mark.parametrize("module", MODULES)
def test_public_functions_are_annotated(module):
    missing = []
    for qualname, function in public_functions(module):
        annotations = function.__annotations__
        params = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        absent = [p for p in params if p not in annotations]
        if "return" not in annotations:
            absent.append("return")
        if absent:
            missing.append(f"{qualname}: {', '.join(absent)}")
    assert missing == []


def test_the_package_is_marked_typed():
    assert (Path(softmax_lib.__file__).parent / "py.typed").is_file()
