"""The thin path of small calls (issue 10, item 8): taken by value, not identity;
anything else goes through the checked path and gets its errors."""

import numpy as np
import pytest

native = pytest.importorskip("softmax_lib.native", reason="the C library was not built")


@pytest.fixture
def no_checked_path(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("took the checked path")

    monkeypatch.setattr(native, "_run", refuse)


def test_thin_path_compares_by_value(no_checked_path):
    x = np.random.default_rng(15).normal(size=(3, 10)).astype(np.float32)
    y = native.softmax(x)
    built_auto = "".join(["au", "to"])  # equal to "auto", not the same object
    assert built_auto is not "auto"  # noqa: F632  (the point of the test)
    for name, args in (
        ("softmax", (x,)),
        ("log_softmax", (x,)),
        ("softmax_vjp", (y, x)),
        ("log_softmax_vjp", (y, x)),
    ):
        f = getattr(native, name)
        np.testing.assert_array_equal(f(*args, axis=int("-1"), isa=built_auto), f(*args))
        for isa in native.available_isas():
            np.testing.assert_array_equal(f(*args, isa="".join(isa)), f(*args, isa=isa))


def test_other_spellings_take_the_checked_path():
    x = np.random.default_rng(16).normal(size=(3, 10))
    with pytest.raises(TypeError, match="axis must be an integer"):
        native.softmax(x, axis=-1.0)
    with pytest.raises(ValueError, match="isa must be"):
        native.softmax(x, isa=np.array(["auto"]))
    np.testing.assert_array_equal(native.softmax(x, axis=np.int64(-1)), native.softmax(x))
    np.testing.assert_array_equal(native.softmax(x, isa=np.str_("auto")), native.softmax(x))
