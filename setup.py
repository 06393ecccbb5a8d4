"""Only here because setuptools reads ``cffi_modules`` from setup.py, not pyproject."""
from setuptools import setup

setup(cffi_modules=["native/build_ffi.py:ffibuilder"])
