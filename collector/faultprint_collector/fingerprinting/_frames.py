"""In-app frames from Python traceback text.

A frame contributes ``module.function`` only, never a line number or an
absolute path: a redeploy that moves code or changes the install prefix must
not move fingerprints. Library frames (site-packages, dist-packages, the
standard library, frozen and generated code, and faultprint's own SDK) are dropped, because the same
failure mode reaches the same library code through different application
paths and the application path is what an engineer fixes. The application's
own package is in-app wherever it is installed (an image built with
``pip install .`` puts it in site-packages): its frames read the same as
from a source checkout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MAX_FRAMES", "in_app_frames", "is_library_path", "module_of"]

#: innermost in-app frames kept: enough to tell call paths apart, few enough
#: that an unrelated outer caller (a scheduler, a test runner) does not split
#: a mode
MAX_FRAMES = 3

#: only the last this many characters of a traceback are read
MAX_TRACEBACK = 65536

_FRAME = re.compile(r'^[ \t]*File "(?P<path>[^"\n]*)", line \d+, in (?P<func>[^\s]+)', re.M)

# The last traceback in a chained report is the exception that was raised;
# earlier ones are its causes / contexts.
_CHAIN = re.compile(
    r"^(?:During handling of the above exception, another exception occurred:|"
    r"The above exception was the direct cause of the following exception:)\s*$",
    re.M,
)

_LIBRARY = re.compile(
    r"[/\\](?:site-packages|dist-packages)[/\\]"  # installed third-party code
    r"|[/\\]lib[/\\]python\d+(?:\.\d+)?[/\\]"  # the standard library (posix layout)
    r"|[/\\]Lib[/\\]"  # the standard library (windows layout)
    r"|^<"  # <frozen importlib._bootstrap>, <string>, <stdin>
    # faultprint's own SDK (its call wrapper sits on every observed call's
    # stack): a module of the `faultprint` package or its integrations. Anchored
    # at the file, so an application merely checked out under a directory
    # named faultprint keeps its frames.
    r"|[/\\]faultprint[/\\](?:integrations[/\\].*|[^/\\]+\.py)$"
)

#: the top-level package (or single module) of an installed file
_INSTALLED = re.compile(
    r"[/\\](?:site-packages|dist-packages)[/\\](?P<top>[A-Za-z_]\w*)(?:[/\\]|\.py$)"
)

_SOURCE_ROOTS = frozenset({"src", "lib", "app", "apps", "source", "python", "code"})
_DIGITS = re.compile(r"\d+")
#: a directory named by a commit id
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def is_library_path(path: str) -> bool:
    """True for frames that belong to installed libraries or the interpreter."""
    return _LIBRARY.search(path) is not None


def module_of(path: str) -> str:
    """A deployment-independent module name for a source path.

    The last two path components (package and file, ``__init__`` dropped):
    ``/srv/app/src/shop/orders.py`` and ``/home/ci/shop/orders.py`` are both
    ``shop.orders``. Absolute prefixes differ per machine; the tail does not.
    The numbers of the directory are masked: a script at the root of a
    release directory (``/srv/rel-1.0/worker.py``, ``/srv/rel-1.1/worker.py``)
    is one module, ``rel-#.worker``, on every release.
    """
    parts = [p for p in re.split(r"[/\\]+", path) if p]
    if not parts:
        return ""
    stem = parts[-1]
    if stem.endswith(".py"):
        stem = stem[:-3]
    names = [*parts[:-1], stem] if stem != "__init__" else parts[:-1]
    tail = names[-2:]
    if len(tail) == 2 and tail[0] in _SOURCE_ROOTS:
        tail = tail[1:]
    if len(tail) == 2 and any(ch.isdigit() for ch in tail[0]):
        # a release directory (rel-1.0, app-2.4.1, 20240601120000, a commit
        # id) changes with every deploy: its numbers are not the module's
        tail[0] = "#" if _COMMIT.match(tail[0]) else _DIGITS.sub("#", tail[0])
    return ".".join(tail)


def in_app_frames(
    stacktrace: str,
    limit: int = MAX_FRAMES,
    app_package: str = "",
    modules: Mapping[str, str] | None = None,
) -> list[str]:
    """Innermost in-app frames of the raised exception, as ``module.function``.

    Innermost last (the traceback's order). Consecutive repeats collapse, so
    the depth of a recursion does not split a mode. Files of APP_PACKAGE (a
    top-level package name) are in-app even when installed. MODULES maps a
    file's path to the module its code runs as, when the sender knows it
    (faultprint's SDK does): the module then names the frame, cut as
    ``module_of`` cuts a path, so that a script at the root of a checkout
    is the same module whatever the checkout's directory is called.
    """
    if "File " not in stacktrace:
        return []
    # the raised exception's frames are at the end; a bounded tail keeps huge
    # (recursive) tracebacks cheap
    text = stacktrace[-MAX_TRACEBACK:]
    chain = list(_CHAIN.finditer(text))
    if chain:
        text = text[chain[-1].end() :]
    frames: list[str] = []
    for m in _FRAME.finditer(text):
        path = m.group("path")
        if is_library_path(path) and not _installed_app(path, app_package):
            continue
        name = modules.get(path) if modules else None
        module = module_of(name.replace(".", "/")) if name else module_of(path)
        frame = f"{module}.{m.group('func')}"
        if not frames or frames[-1] != frame:
            frames.append(frame)
    return frames[-limit:]


def _installed_app(path: str, app_package: str) -> bool:
    """PATH is a file of the application's package APP_PACKAGE, installed."""
    if not app_package:
        return False
    m = _INSTALLED.search(path)
    return m is not None and m.group("top") == app_package
