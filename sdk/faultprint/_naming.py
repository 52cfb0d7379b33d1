"""Module names as they identify code, the same in every process."""

from __future__ import annotations

__all__ = ["code_module"]


def code_module(name: str) -> str:
    """NAME, with the main script under its one name, ``__main__``.

    multiprocessing's spawn and forkserver children import the main script
    as ``__mp_main__``: its functions and exception classes would otherwise
    get a second call site and error type there, so a second fingerprint,
    for one failure mode.
    """
    return "__main__" if name == "__mp_main__" else name
