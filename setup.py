"""Builds the optional native block-counting hook (rrdbg/machine/_icount.c).

The extension is optional: when no C compiler is available the install still
succeeds and rrdbg uses the pure-Python counter, which gives identical counts.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rrdbg.machine._icount",
            sources=["rrdbg/machine/_icount.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
