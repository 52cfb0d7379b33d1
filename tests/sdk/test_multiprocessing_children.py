"""multiprocessing children that configure faultprint themselves export their
spans, with every start method.

Under fork and forkserver a child ends with ``os._exit``, which skips atexit:
only multiprocessing's exit finalizers run, and a child clears their registry
as it starts. Each script below exports nothing until the exit flush
(``schedule_delay=60``), so a span stored is a span that flush exported.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PY = sys.executable

CONFIGURED_IN_THE_CHILD = """
import multiprocessing, sys
import faultprint

URL, METHOD, PARENT_FIRST = sys.argv[1], sys.argv[2], sys.argv[3] == "parent first"


def setup():
    faultprint.configure(endpoint=URL, schedule_delay=60, use_global_provider=False)


@faultprint.observe(model="m")
def in_target(x):
    return x


@faultprint.observe(model="m")
def in_pool(x):
    return x


def target():
    setup()  # at the top of a Process target
    for i in range(3):
        in_target(i)


if __name__ == "__main__":
    if PARENT_FIRST:
        setup()  # a forked child then inherits a configured faultprint and reconfigures
    ctx = multiprocessing.get_context(METHOD)
    proc = ctx.Process(target=target)
    proc.start()
    proc.join()
    pool = ctx.Pool(2, initializer=setup)
    assert pool.map(in_pool, range(4)) == [0, 1, 2, 3]
    pool.close()
    pool.join()
    sys.exit(proc.exitcode)
"""


@pytest.mark.parametrize(
    ("method", "parent"),
    [
        ("fork", "parent unconfigured"),
        ("fork", "parent first"),
        ("forkserver", "parent unconfigured"),
        ("spawn", "parent unconfigured"),
    ],
)
def test_a_child_that_configures_itself_exports_its_spans(receiver, tmp_path, method, parent):
    script = tmp_path / "child_configures.py"
    script.write_text(textwrap.dedent(CONFIGURED_IN_THE_CHILD))
    subprocess.run([PY, str(script), receiver.url, method, parent], check=True, timeout=120)
    sites = [site.rsplit(".", 1)[-1] for site in receiver.call_sites()]
    assert sites == ["in_pool"] * 4 + ["in_target"] * 3  # each exactly once


CONFIGURED_AT_MODULE_LEVEL = """
import multiprocessing, sys
import faultprint

# Under spawn and forkserver this runs again in every child, as it imports
# the main module, before the child starts.
faultprint.configure(endpoint=sys.argv[1], schedule_delay=60, use_global_provider=False)


class Boom(Exception):
    pass


@faultprint.observe(model="m")
def work(x):
    if x == 3:
        raise Boom("no")
    return x


def safely(x):
    try:
        return work(x)
    except Boom:
        return None


def in_process():
    safely(-1)
    safely(3)


if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[2])
    proc = ctx.Process(target=in_process)
    proc.start()
    proc.join()
    pool = ctx.Pool(2)
    pool.map(safely, range(4))
    pool.close()
    pool.join()
    safely(99)
    safely(3)
    sys.exit(proc.exitcode)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_module_level_configure_exports_the_childrens_spans(receiver, tmp_path, method):
    script = tmp_path / "module_level.py"
    script.write_text(textwrap.dedent(CONFIGURED_AT_MODULE_LEVEL))
    subprocess.run([PY, str(script), receiver.url, method], check=True, timeout=120)
    # 2 in the Process, 4 in the Pool, 2 in the parent: nothing lost or doubled.
    # Spawn and forkserver children import the script as __mp_main__: its
    # function and its exception are named as in the parent all the same,
    # or one failure mode would get a fingerprint per start method.
    assert receiver.call_sites() == ["__main__.work"] * 8
    errors = [s["attributes"].get("error.type") for s in receiver.received]
    assert sorted(e for e in errors if e) == ["__main__.Boom"] * 3
