#!/usr/bin/env bash
# The package as a packager and its users get it (`make dist-check`), from a fresh
# clone of the committed tree, all outside it:
#   1. python -m build: the sdist, then the wheel built from that sdist; twine check;
#      the wheel is cp310-abi3 and holds the package, the extension and LICENSE only;
#   2. the wheel in a clean venv: BACKEND == "native", results match NumPy, and
#      only softmax.h's API (+ PyInit) is exported; the same wheel on every
#      interpreter in ABI3_PYTHONS too (e.g. "python3.10 python3.13");
#   3. the sdist with no C compiler (CC=false): installs, BACKEND == "vectorized",
#      exactly one NativeLibraryWarning at import.
# Needs PyPI (build requirements and numpy etc.); pip's cache makes reruns quick.
set -euo pipefail
PYTHON=${PYTHON:-python3}
REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
WORK=$(mktemp -d /tmp/softmax_lib-dist.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
say() { printf '\n== %s\n' "$*"; }

say "fresh clone of $(git -C "$REPO" rev-parse --short HEAD)"
git clone -q "$REPO" "$WORK/src"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build twine

say "python -m build (sdist, then the wheel from the sdist)"
(cd "$WORK/src" && SOFTMAX_LIB_REQUIRE_NATIVE=1 "$WORK/tools/bin/python" -m build --outdir "$WORK/dist" \
    >"$WORK/build.log" 2>&1) \
    || { tail -40 "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)
ls -l "$WORK/dist"
"$WORK/tools/bin/twine" check --strict "$WORK"/dist/*

say "wheel tag and contents"
"$WORK/tools/bin/python" - "$WHEEL" "$SDIST" <<'EOF'
import re, sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
assert re.search(r"-cp310-abi3-[^-]+\.whl$", wheel), f"not a cp310-abi3 wheel: {wheel}"
names = zipfile.ZipFile(wheel).namelist()
stray = [n for n in names if not re.fullmatch(
    r"softmax_lib/\w+\.py|softmax_lib/py\.typed|softmax_lib/_native\.abi3\.so|softmax_lib-[^/]+\.dist-info/"
    r"(METADATA|WHEEL|RECORD|top_level\.txt|licenses/LICENSE)", n)]
assert not stray, f"unexpected files in the wheel: {stray}"
assert any(n.endswith("_native.abi3.so") for n in names), "no extension in the wheel"
assert any(n.endswith("licenses/LICENSE") for n in names), "no LICENSE in the wheel"
assert "softmax_lib/py.typed" in names, "no py.typed in the wheel (PEP 561)"
members = {m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m}
need = {"LICENSE", "setup.py", "pyproject.toml", "MANIFEST.in", "native/build_ffi.py",
        "native/softmax.h", "native/kernels.h", "native/exp_avx2.h", "tests/conftest.py"}
assert need <= members, f"missing from the sdist: {sorted(need - members)}"
assert "softmax_lib/_native.c" not in members, "generated C in the sdist"
print(f"{len(names)} files in the wheel, {len(members)} in the sdist: ok")
EOF

SMOKE='
import numpy as np, softmax_lib, sys
from softmax_lib import native, vectorized
assert softmax_lib.BACKEND == "native", softmax_lib.BACKEND
x = np.random.default_rng(0).standard_normal((64, 1000))
for isa in native.available_isas():
    for f in ("softmax", "log_softmax"):
        np.testing.assert_allclose(getattr(native, f)(x, isa=isa), getattr(vectorized, f)(x), rtol=1e-12, atol=1e-300)
print(f"python {sys.version.split()[0]}: softmax_lib {softmax_lib.__version__}, BACKEND native, ISAs {native.available_isas()}: ok")
'
check_exports() {  # $1: a venv; only the public API of softmax.h is exported
    local so want got
    so=$(cd "$WORK" && "$1/bin/python" -c 'import softmax_lib._native as m; print(m.__file__)')  # not the tree's
    case "$so" in "$1"/*) ;; *) echo "imported $so, not the venv's"; exit 1;; esac
    want=$( (sed -n '/cffi-cdef-begin/,/cffi-cdef-end/p' "$WORK/src/native/softmax.h" \
             | sed 's:/\*.*\*/::' | grep -o '\bsm_[a-z0-9_]*(' | tr -d '('; echo PyInit__native) | sort -u)
    got=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtDdBbRrVvWwi]$/ {print $3}' | sort -u)
    if [ "$want" != "$got" ]; then diff <(echo "$want") <(echo "$got"); exit 1; fi
    echo "exported ($(echo "$got" | wc -l)): $(echo $got)"
}

say "the wheel in a clean venv, outside the tree"
i=0
for py in "$PYTHON" ${ABI3_PYTHONS:-}; do
    venv="$WORK/user-$i" && i=$((i + 1))
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q "$WHEEL"
    (cd "$WORK" && "$venv/bin/python" -W error -c "$SMOKE")
done
check_exports "$WORK/user-0"

say "the sdist with no C compiler (CC=false)"
"$PYTHON" -m venv "$WORK/nocc"
(cd "$WORK" && CC=false SOFTMAX_LIB_REQUIRE_NATIVE=0 "$WORK/nocc/bin/pip" install -q --no-cache-dir "$SDIST")
(cd "$WORK" && "$WORK/nocc/bin/python" -c '
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import softmax_lib, softmax_lib.layers
    y = softmax_lib.softmax([1.0, 2.0])
assert softmax_lib.BACKEND == "vectorized", softmax_lib.BACKEND
ours = [w for w in caught if w.category is softmax_lib.NativeLibraryWarning]
assert len(ours) == 1 and len(caught) == 1, [str(w.message) for w in caught]
print("BACKEND vectorized; the one warning:", ours[0].message)
')
say "dist-check: all passed"
