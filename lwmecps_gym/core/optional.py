"""Optional dependencies: import them lazily, and fail with the extra to install.

Heavy or cluster-only packages (matplotlib, kubernetes, requests, prometheus_api_client, torch,
stable_baselines3, pettingzoo) stay off the default import path. Code that needs one calls
:func:`require` (or :func:`import_optional`) first, so a missing package raises an
``ImportError`` that names the ``pyproject.toml`` extra that provides it, instead of a bare
``ModuleNotFoundError``.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType

#: The extra of ``pyproject.toml`` that installs each optional top-level module.
EXTRA_OF: dict[str, str] = {
    "matplotlib": "plot",
    "kubernetes": "k8s",
    "requests": "k8s",
    "tenacity": "k8s",
    "prometheus_api_client": "prometheus",
    "torch": "sb3",
    "stable_baselines3": "sb3",
    "sb3_contrib": "sb3",
    "tqdm": "sb3",
    "pettingzoo": "marl",
    "supersuit": "marl",
}


def missing_extra_error(exc: ModuleNotFoundError, purpose: str | None = None, extra: str | None = None) -> ImportError | None:
    """The friendly ``ImportError`` for ``exc`` if it is a missing optional dependency, else ``None``.

    Args:
        exc: the ``ModuleNotFoundError`` raised by an import.
        purpose: what needed it, for the message (e.g. ``"backend='kubernetes'"``).
        extra: the extra to name; default from :data:`EXTRA_OF` by the missing module's top-level name.
    """
    top = (exc.name or "").split(".", 1)[0]
    if top not in EXTRA_OF and extra is None:
        return None  # not an optional dependency (e.g. a bug in an import path): let it surface as is
    extra = extra or EXTRA_OF[top]
    what = f"{purpose} needs" if purpose else "this needs"
    return ImportError(
        f"{what} the optional dependency {top!r} of the {extra!r} extra; install it with: {install_hint(extra)}"
    )


class extra_hint(contextlib.ContextDecorator):
    """Turn a missing optional dependency raised inside the block (or decorated function) into an
    ``ImportError`` that names its extra; other errors pass through unchanged.

    >>> with extra_hint("backend='kubernetes'"):   # doctest: +SKIP
    ...     import kubernetes
    ImportError: backend='kubernetes' needs the optional dependency 'kubernetes' of the 'k8s' extra; ...
    """

    def __init__(self, purpose: str | None = None, extra: str | None = None):
        self.purpose = purpose
        self.extra = extra  # the feature's extra, if it needs more than the missing module's own

    def __enter__(self) -> extra_hint:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".", 1)[0] in EXTRA_OF:
            friendly = missing_extra_error(exc, self.purpose, self.extra)
            if friendly is not None:
                raise friendly from exc
        return False


def install_hint(extra: str) -> str:
    """The install command of ``extra`` (the distribution is installed from a clone, not an index)."""
    return f'pip install -e ".[{extra}]"  (in a clone of lwmecps-gym; or the built wheel with [{extra}])'


def import_optional(module: str, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` naming the extra that installs it.

    Args:
        module: dotted module name, e.g. ``"kubernetes.client"``.
        extra: the ``pyproject.toml`` extra; default from :data:`EXTRA_OF` by top-level name.
        purpose: what needs it, for the message (e.g. ``"backend='kubernetes'"``).

    Raises:
        ImportError: the module (or one of its own dependencies) cannot be imported; the
            message names the extra and the install command, and chains the original error.
    """
    top = module.split(".", 1)[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        friendly = missing_extra_error(exc, purpose, extra or EXTRA_OF.get(top, "all"))
        raise friendly from exc


def require(module: str, extra: str | None = None, purpose: str | None = None) -> None:
    """Check that ``module`` imports (see :func:`import_optional`); returns nothing."""
    import_optional(module, extra, purpose)
