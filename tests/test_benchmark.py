"""The benchmark harness runs (issue 10, item 9): axis 0, short rows, thread
counts and the roofline column. Tiny budgets; no timing is asserted."""

import numpy as np

from softmax_lib import benchmark


def test_run_along_each_axis_with_roof_and_threads():
    for axis in (-1, 0):
        rows = benchmark.run(
            grid=[(4096, 3), (3, 40)],
            ops=("softmax", "softmax_vjp"),
            dtypes=("float32",),
            rounds=1,
            budget=1e-4,
            axis=axis,
        )
        impls = {r["impl"] for r in rows}
        assert {
            "numpy",
            "native-scalar",
        } <= impls or "native-scalar" not in benchmark.implementations()
        assert any(i.endswith("-threads") for i in impls) == any(
            i.endswith("-threads") for i in benchmark.implementations()
        )
        assert any(i.startswith("kernel-") for i in impls) == (
            axis == -1 and any(i.startswith("kernel-") for i in benchmark.implementations())
        )
        for r in rows:
            assert r["axis"] == axis and r["vs_roof"] > 0
            if r["op"] == "softmax_vjp":  # no exp: the roof is the triad floor
                np.testing.assert_allclose(r["vs_roof"], r["vs_floor"], rtol=1e-12)
            else:
                assert r["vs_roof"] <= r["vs_floor"] * (1 + 1e-12)
    assert (4096, 3) in benchmark.GRID
    assert "/roof" in benchmark.format_table(rows).splitlines()[0]


def test_several_axes_in_the_same_rounds():
    rows = benchmark.run(
        grid=[(5, 40)],
        ops=("softmax",),
        dtypes=("float64",),
        rounds=1,
        budget=1e-4,
        axis=(-1, 0),
    )
    by_axis = {a: {r["impl"] for r in rows if r["axis"] == a} for a in (-1, 0)}
    assert by_axis[-1] == set(benchmark.implementations(-1))
    assert by_axis[0] == set(benchmark.implementations(0))
    # one floor for both: measured once, on the same arrays
    assert len({r["floor"] for r in rows}) == 1
    for r in rows:  # PyTorch along the row's own axis
        torch = [t for t in rows if t["impl"] == "torch" and t["axis"] == r["axis"]]
        assert (r["vs_torch"] is None) == (not torch)
        if torch:
            np.testing.assert_allclose(r["vs_torch"], r["median"] / torch[0]["median"])
    table = benchmark.format_table(rows).splitlines()
    assert "axis" in table[0] and len(table) == len(rows) + 2


def test_command_line_with_two_axes(capsys):
    argv = ["--shapes", "2x8", "--ops", "softmax", "--dtypes", "float64", "--rounds", "1"]
    benchmark.main([*argv, "--axis=-1,0"])
    lines = capsys.readouterr().out.splitlines()[2:]
    assert {line.split()[1] for line in lines} == {"-1", "0"}
