# The two commands of the README: `make test` and `make book`.
# Each creates .venv when missing and installs the project (editable) with what it needs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NATIVE := $(wildcard native/*.c native/*.h native/*.py) setup.py pyproject.toml

.PHONY: test book native clean sanitize test-nosimd

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install (and so rebuild the C library) whenever the native sources change.
$(VENV)/.installed-test: $(PY) $(NATIVE)
	$(PY) -m pip install --quiet -e '.[test,book]'
	touch $@

$(VENV)/.installed-book: $(PY) $(NATIVE)
	$(PY) -m pip install --quiet -e '.[book]'
	touch $@

# Strict: any Sphinx warning, broken reference or cell error fails the build.
book: $(VENV)/.installed-book
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going

test: $(VENV)/.installed-test
	$(PY) -m pytest

native: $(VENV)/.installed-test

# Variants of the C library, each built in a copy of the working tree under
# build/ (the in-place build stays as it is), then the whole test suite on it.
# The book's tests are left out of the variants: the chapters execute in a Jupyter
# kernel that imports the main tree's library, not the variant's, so they would
# only repeat `make test`'s build (and Chromium cannot start with libasan preloaded).
VARIANT_SKIP := --ignore=tests/test_book.py --ignore=tests/test_browser.py
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
		$(abspath $(PY)) -m pytest -p no:cacheprovider $(VARIANT_SKIP)

test-nosimd: $(VENV)/.installed-test
	$(call variant_tree,build/nosimd)
	SOFTMAX_LIB_NO_SIMD=1 $(PY) build/nosimd/native/build_ffi.py build/nosimd
	! objdump -d build/nosimd/softmax_lib/_native*.so | grep -q ymm  # no AVX code at all
	cd build/nosimd && SOFTMAX_LIB_NO_SIMD=1 $(abspath $(PY)) -m pytest -p no:cacheprovider $(VARIANT_SKIP)

clean:
	rm -rf _build build *.egg-info softmax_lib/_native*.so softmax_lib/_native.c

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
