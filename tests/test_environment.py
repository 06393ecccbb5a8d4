"""The machine the suite runs as: CI's variants really change the arithmetic.

`.ci/run` repeats the suite with NumPy held to lower SIMD dispatch levels
(``NPY_DISABLE_CPU_FEATURES``) and with the portable C kernels
(``SOFTMAX_LIB_ISA=scalar``). A variant that silently changed nothing (a renamed
NumPy group, a misspelt variable) would pass while testing nothing, so check here
that each requested setting took effect.
"""

import os
import re

import numpy as np
import pytest
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

DISABLED = [g for g in re.split(r"[,\s]+", os.environ.get("NPY_DISABLE_CPU_FEATURES", "")) if g]


@pytest.mark.skipif(not DISABLED, reason="NPY_DISABLE_CPU_FEATURES is not set")
@pytest.mark.parametrize("group", DISABLED)
def test_disabled_numpy_group_is_off(group):
    assert group in __cpu_dispatch__, f"{group} is not a NumPy dispatch group: {__cpu_dispatch__}"
    assert not __cpu_features__[group]


@pytest.mark.skipif(
    os.environ.get("SOFTMAX_LIB_ISA") != "scalar", reason="SOFTMAX_LIB_ISA is not scalar"
)
def test_scalar_isa_is_the_only_one():
    native = pytest.importorskip("softmax_lib.native")
    assert native.available_isas() == ("scalar",)
    assert native.best_isa() == "scalar"


def test_numpy_level_is_reported():
    """The header line conftest prints names the groups in effect (CI logs show it)."""
    from conftest import machine_summary

    summary = machine_summary()
    assert f"numpy {np.__version__}" in summary
    for group in DISABLED:
        assert group not in summary.split("dispatch:")[1].split(";")[0]
