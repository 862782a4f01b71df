"""Build of the compiled core pyk._native; metadata lives in pyproject.toml.

One Extension, compiled from ext/_native.pyx (which includes the other ext/*.pyx files)
plus the C helpers in ext/c/.  PYK_DEBUG=1 builds with Cython annotations (ext/*.html),
line tracing for coverage/profilers and a PYK_DEBUG C define.  A failed compile fails the
build: there is no silent pure-Python fallback (STYLE practice 14).
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PYK_DEBUG") == "1"

define_macros = [("PYK_DEBUG", "1" if DEBUG else "0")]
directives = {"language_level": "3"}
if DEBUG:
    # CYTHON_TRACE turns the linetrace directive's hooks on in the C code.
    define_macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    directives["linetrace"] = True

extensions = [
    Extension(
        "pyk._native",
        sources=["ext/_native.pyx", *sorted(glob.glob("ext/c/*.c"))],
        include_dirs=["ext/include"],
        # setuptools' timestamp check does not see headers, nor the pxd shim Cython reaches
        # by module name; Cython tracks the other .pyx/.pxd/.pxi includes itself.
        depends=[*sorted(glob.glob("ext/include/*.h")), "ext/pyk/_native.pxd"],
        libraries=["z", "snappy", "lz4", "zstd", "xxhash", "uring"],
        define_macros=define_macros,
        extra_compile_args=["-O2", "-Wall", "-Wsign-compare", "-Wconversion"],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives, annotate=DEBUG),
)
