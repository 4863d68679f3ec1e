"""Shared pytest configuration."""

from __future__ import annotations

import warnings

# lifetimes (the reference implementation, a test dependency only) is old code: importing it
# triggers deprecation warnings from pandas and setuptools that are not ours to fix. Import it
# once here with those warnings silenced so `filterwarnings = error` still guards our own code.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import lifetimes
        import lifetimes.datasets  # noqa: F401
    except ImportError:  # pragma: no cover - lifetimes is in the dev extra
        pass

import contextlib
from collections.abc import Iterator

from hypothesis import settings as hypothesis_settings

# Property tests draw their examples from a fixed seed: a CI run checks exactly what was checked
# when the tests were written (no flaky first-time failures), and failures reproduce.
hypothesis_settings.register_profile("deterministic", derandomize=True, deadline=None)
hypothesis_settings.load_profile("deterministic")


@contextlib.contextmanager
def quiet_reference() -> Iterator[None]:
    """Silence warnings raised inside lifetimes (reference fits), never inside our code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
