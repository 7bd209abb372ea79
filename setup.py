"""Build hook for the optional C kernel of the lwmecps simulator (everything else is in pyproject.toml).

The extension ``lwmecps_gym.backends.sim._ckernel`` is ``optional``: if it does not compile
(no C compiler, no Python headers), the install still succeeds and the simulator uses its
pure-Python kernel (the reference). FMA contraction is disabled so the C kernel's floating
point matches the Python reference bit for bit.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class _BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = [*ext.extra_compile_args, "-O2", "-ffp-contract=off"]
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "lwmecps_gym.backends.sim._ckernel",
            sources=["lwmecps_gym/backends/sim/_ckernel.c"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": _BuildExt},
)
