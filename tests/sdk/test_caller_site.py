"""The caller's name an integration span carries (``code.function.name``)."""

from __future__ import annotations

import gc
from typing import Any

import faultprint
import pytest
from faultprint.integrations._common import caller_site

from tests.sdk.providers import CHAT, MESSAGES, openai_client, responder

pytest.importorskip("openai")

HANDLER = """
def handler(client, messages):
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages)
"""


def module_function(module: str, source: str, name: str, **names: Any) -> Any:
    """Function NAME of SOURCE, compiled as if it were in MODULE."""
    namespace: dict[str, Any] = {"__name__": module, **names}
    exec(compile(source, "<app>", "exec"), namespace)
    return namespace[name]


def test_the_same_code_in_two_modules_names_each_module(spans: Any) -> None:
    # Two modules holding the same function, line for line, compile to code
    # objects Python holds equal: each call is still named by its own module.
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    for module in ("shop.checkout", "shop.returns", "shop.checkout"):
        module_function(module, HANDLER, "handler")(client, MESSAGES)
    names = [span.attributes["code.function.name"] for span in spans.all()]
    assert names == ["shop.checkout.handler", "shop.returns.handler", "shop.checkout.handler"]


def test_a_new_function_never_takes_the_name_of_one_gone_before() -> None:
    # A function's code freed and another's allocated where it was: the
    # name is the new function's, every time.
    for n in range(300):
        source = f"def handler_{n}():\n    return site(1)\n"
        handler = module_function(f"jobs.batch_{n}", source, f"handler_{n}", site=caller_site)
        assert handler() == f"jobs.batch_{n}.handler_{n}"
        del handler
        gc.collect(0)  # (its namespace holds it in a cycle)


def test_frames_of_faultprint_and_the_providers_are_skipped_every_time() -> None:
    provider = module_function(
        "openai.resources.chat", "def create():\n    return site(1)\n", "create", site=caller_site
    )
    ours = module_function(
        "faultprint.integrations.x",
        "def wrapped():\n    return create()\n",
        "wrapped",
        create=provider,
    )

    def application_code() -> str:
        return ours()

    first, again = application_code(), application_code()
    expected = f"{__name__}.{application_code.__qualname__}"
    assert first == again == expected


def test_a_search_beyond_the_stack_is_unknown() -> None:
    assert caller_site(10_000) == "unknown"
