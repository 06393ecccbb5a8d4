# The two commands of the README: `make test` and `make book`.
# Each creates .venv when missing and installs the project (editable) with what it needs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NATIVE := $(wildcard native/*.c native/*.h native/*.py) setup.py pyproject.toml
# Every package of the test and book environments (and the build requirements) at
# one version, so a fresh clone resolves what CI resolved: Jupyter Book 1 is in
# maintenance mode, and with -W and filterwarnings=error any new release in its
# stack could turn the build red. `make lock` regenerates it from pyproject.toml.
LOCK   := requirements-lock.txt
# PIP_CONSTRAINT, unlike -c, also reaches pip's isolated build environment
# (setuptools, cffi).
PIP_INSTALL := PIP_CONSTRAINT=$(abspath $(LOCK)) $(PY) -m pip install --quiet
UV_VERSION  := 0.13.9

.PHONY: test book native clean sanitize test-nosimd test-numpy-levels lock

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install (and so rebuild the C library) whenever the native sources or the lock change.
$(VENV)/.installed-test: $(PY) $(NATIVE) $(LOCK)
	$(PIP_INSTALL) -e '.[test,book]'
	touch $@

$(VENV)/.installed-book: $(PY) $(NATIVE) $(LOCK)
	$(PIP_INSTALL) -e '.[book]'
	touch $@

# One resolution for every Python the project supports (markers split it where
# needed); the build requirements are read from pyproject.toml's [build-system],
# the packaging and lint tools from .ci/tools.in.
lock: $(PY)
	$(PY) -m pip install --quiet 'uv==$(UV_VERSION)'
	mkdir -p build
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		> build/build-requires.in
	$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.10 --custom-compile-command "make lock" \
		--extra test --extra book pyproject.toml build/build-requires.in .ci/tools.in -o $(LOCK)

# Strict: any Sphinx warning, broken reference or cell error fails the build.
book: $(VENV)/.installed-book
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going

test: $(VENV)/.installed-test
	$(PY) -m pytest

native: $(VENV)/.installed-test

# The whole suite, book included, as NumPy computes on CPUs below this one: at each
# lower SIMD dispatch level this CPU has, and at the baseline with the portable C
# kernels (.ci/numpy_levels.py lists them). Exp, log and sums round differently at
# each level, so a tolerance that is not a bound shows up here.
# Levels are read first, so that a failing script (or no level at all) fails here.
test-numpy-levels: $(VENV)/.installed-test
	levels="$$($(PY) .ci/numpy_levels.py)" && \
	echo "$$levels" | grep -q 'NPY_DISABLE_CPU_FEATURES=' && \
	echo "$$levels" | while read -r level settings; do \
		echo "== the suite at NumPy level $$level: $$settings"; \
		env $$settings $(PY) -m pytest -p no:cacheprovider || exit 1; \
	done

# Variants of the C library, each built in a copy of the working tree under
# build/ (the in-place build stays as it is), then the whole test suite on it.
# The no-SIMD variant builds the book too: the chapters' kernels import the
# variant's library (tests/book_build.py puts its tree first on PYTHONPATH). The
# sanitizer variant leaves the book out: Chromium and Jupyter's kernels cannot
# start with libasan preloaded.
SANITIZE_SKIP := --ignore=tests/test_book.py --ignore=tests/test_browser.py
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g
define variant_tree
	rm -rf $(1) && mkdir -p $(1)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(1)
endef

sanitize: $(VENV)/.installed-test
	$(call variant_tree,build/sanitize)
	SOFTMAX_LIB_CFLAGS="$(SANITIZE)" SOFTMAX_LIB_LDFLAGS="$(SANITIZE)" \
		$(PY) build/sanitize/native/build_ffi.py build/sanitize
	ldd build/sanitize/softmax_lib/_native*.so | grep -q libasan  # really instrumented
	# libstdc++ preloaded too: else ASan cannot intercept C++ throws of other
	# extensions (matplotlib's) loaded after it, and aborts.
	cd build/sanitize && \
		LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
		$(abspath $(PY)) -m pytest -p no:cacheprovider $(SANITIZE_SKIP)

test-nosimd: $(VENV)/.installed-test
	$(call variant_tree,build/nosimd)
	SOFTMAX_LIB_NO_SIMD=1 $(PY) build/nosimd/native/build_ffi.py build/nosimd
	! objdump -d build/nosimd/softmax_lib/_native*.so | grep -q ymm  # no AVX code at all
	cd build/nosimd && SOFTMAX_LIB_NO_SIMD=1 $(abspath $(PY)) -m pytest -p no:cacheprovider

clean:
	rm -rf _build build *.egg-info softmax_lib/_native*.so softmax_lib/_native.c

# ---- Packaging and portability checks (issue 13): append-only, self-contained ----
.PHONY: dist-check cross-check lint-workflows

# From a fresh clone: sdist -> wheel -> installs in clean venvs (native backend,
# public symbols only), and the sdist with no C compiler (NumPy backend, one warning).
# ABI3_PYTHONS="python3.10 python3.13" also tries the abi3 wheel on those.
dist-check:
	PIP_CONSTRAINT=$(abspath $(LOCK)) bash .ci/dist_check.sh

# The C library compiled for macOS x86_64/arm64 (zig cc) and Windows x86_64 (mingw-w64
# gcc; MSVC ABI via clang-cl). Needs Debian's mingw-w64 clang lld llvm.
cross-check: $(PY)
	$(PIP_INSTALL) cffi ziglang
	PYTHON=$(abspath $(PY)) bash .ci/cross_check.sh

# GitHub workflows against the vendored schema (offline), every job with a timeout;
# cibuildwheel rejects unknown or misspelt options of [tool.cibuildwheel].
lint-workflows: $(PY)
	$(PIP_INSTALL) check-jsonschema cibuildwheel
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml
	for platform in linux macos windows; do \
		$(VENV)/bin/cibuildwheel --print-build-identifiers --platform $$platform || exit 1; done

# ------------------------------------------------------------------ test-c
# The C library tested without Python (tests/c/test_kernels.c, built from the
# sources in native/ directly): natively with every ISA the build has and the
# CPU runs, and natively with no SIMD code at all; then cross-compiled for
# AArch64 (static: no sysroot needed at run time) and run under qemu, NEON and
# scalar. Warnings are errors here. The cross step needs Debian's
# gcc-aarch64-linux-gnu and qemu-user-static; without them it stops with a message.
CC       ?= cc
TESTC_CFLAGS := -O2 -Wall -Wextra -Werror -Inative
TESTC_SRC := native/dispatch.c native/kernels_scalar.c native/kernels_avx2.c native/kernels_neon.c \
             native/kernels_masked.c \
             tests/c/test_kernels.c
TESTC_LIBS := -lm -lpthread
AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64-static
# exp sweeps under emulation (about 20x slower; float64's long double is software
# quad precision there): every 241st float32 (9e6 points), 2^17 float64 points.
TESTC_QEMU_SWEEP ?= 241 131072
.PHONY: test-c
test-c:
	mkdir -p build/test-c
	$(CC) $(TESTC_CFLAGS) -o build/test-c/test_kernels $(TESTC_SRC) $(TESTC_LIBS)
	$(CC) $(TESTC_CFLAGS) -DSOFTMAX_NO_SIMD -o build/test-c/test_kernels_nosimd $(TESTC_SRC) $(TESTC_LIBS)
	build/test-c/test_kernels
	SOFTMAX_LIB_ISA=scalar build/test-c/test_kernels 997 65536
	build/test-c/test_kernels_nosimd 997 65536
	@command -v $(AARCH64_CC) >/dev/null && command -v $(QEMU_AARCH64) >/dev/null || \
		{ echo "test-c: $(AARCH64_CC) or $(QEMU_AARCH64) missing:" \
		       "apt-get install -y gcc-aarch64-linux-gnu qemu-user-static"; exit 1; }
	$(AARCH64_CC) $(TESTC_CFLAGS) -static -o build/test-c/test_kernels_aarch64 $(TESTC_SRC) $(TESTC_LIBS)
	# the NEON code really is in the binary (fmla on .4s / .2d vectors)
	$(AARCH64_CC:gcc=objdump) -d build/test-c/test_kernels_aarch64 | grep -q 'fmla.*v[0-9]*\.2d'
	$(QEMU_AARCH64) build/test-c/test_kernels_aarch64 $(TESTC_QEMU_SWEEP)
	SOFTMAX_LIB_ISA=scalar $(QEMU_AARCH64) build/test-c/test_kernels_aarch64 997 65536
	$(AARCH64_CC) $(TESTC_CFLAGS) -DSOFTMAX_NO_SIMD -static -o build/test-c/test_kernels_aarch64_nosimd \
		$(TESTC_SRC) $(TESTC_LIBS)
	$(QEMU_AARCH64) build/test-c/test_kernels_aarch64_nosimd 997 65536

# ------------------------------------------------------------------ lint
# ruff (lint + format) on the tree and on the chapters' code cells, mypy on the
# package: the hooks of .pre-commit-config.yaml, run on every file. Rules and
# exceptions live in pyproject.toml; the tools come from the lock (.ci/tools.in).
LINT_DIR := build/lint
LINT_TOOLS := $(VENV)/.installed-lint
.PHONY: lint lint-chapters typecheck format
$(LINT_TOOLS): $(VENV)/.installed-test .ci/tools.in
	$(PIP_INSTALL) ruff mypy pre-commit
	touch $@

lint: $(LINT_TOOLS)
	$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

# The chapters as notebooks (jupytext), which ruff reads cell by cell.
lint-chapters: $(LINT_TOOLS)
	rm -rf $(LINT_DIR) && mkdir -p $(LINT_DIR)/chapters
	for md in chapters/*.md; do \
		$(VENV)/bin/jupytext --quiet --to ipynb -o $(LINT_DIR)/$${md%.md}.ipynb $$md || exit 1; done
	$(VENV)/bin/ruff check $(LINT_DIR)/chapters

typecheck: $(LINT_TOOLS)
	$(VENV)/bin/mypy

# Rewrites the tree: ruff's safe fixes, then its formatter.
format: $(LINT_TOOLS)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
