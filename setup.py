"""Build of the C core (pseudonic._engine); everything else is in pyproject.toml."""

from setuptools import Extension, setup

ENGINE = "src/pseudonic/_engine/"
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]

setup(
    ext_modules=[
        Extension(
            "pseudonic._engine",
            sources=[
                ENGINE + name
                for name in (
                    "enginemodule.c",
                    "pnic_segment.c",
                    "pnic_send.c",
                    "pnic_verify.c",
                    "pnic_e1000.c",
                    "pnic_e1000_tx.c",
                    "pnic_virtio.c",
                    "pnic_fcs.c",
                    "pnic_wait.c",
                    "pnic_chost.c",
                    "pnic_sanitize.c",
                    "pnic_memcpy.c",
                    "pnic_twocore.c",
                    "pnic_calibrate.c",
                )
            ],
            depends=[
                ENGINE + h
                for h in ("pnic_layout.h", "pnic_engine.h", "pseudonic.h", "pnic_cpu.h", "pnic_model.h", "pnic_stamp.h")
            ],
            # The engine's functions are its own (only PyInit__engine is exported): calls between its
            # files go direct, not through the PLT, and a function may be inlined where it is called.
            extra_compile_args=[*CFLAGS, "-fvisibility=hidden", "-fno-semantic-interposition"],
        ),
        # Plain shared libraries (no Python API), loaded with ctypes.
        Extension(
            "pseudonic.drivers._e1000_c",
            sources=["src/pseudonic/drivers/e1000.c"],
            include_dirs=[ENGINE],
            depends=[ENGINE + "pnic_layout.h", ENGINE + "pseudonic.h"],
            extra_compile_args=CFLAGS,
        ),
        Extension(
            "pseudonic.drivers._virtio_net_c",
            sources=["src/pseudonic/drivers/virtio_net.c"],
            include_dirs=[ENGINE],
            depends=[ENGINE + "pnic_layout.h", ENGINE + "pseudonic.h"],
            extra_compile_args=CFLAGS,
        ),
        Extension("pseudonic.bench._udp_blast", sources=["src/pseudonic/bench/udp_blast.c"], extra_compile_args=CFLAGS),
    ]
)
