"""Builds the optional C extensions: the block-counting hook
(rrdbg/machine/_icount.c) and the replay log's CRC-32C (rrdbg/record/_crc32c.c).

Both are optional: without a C compiler the install still succeeds and rrdbg
uses their pure-Python twins, which give identical results.
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
        ),
        Extension(
            "rrdbg.record._crc32c",
            sources=["rrdbg/record/_crc32c.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
