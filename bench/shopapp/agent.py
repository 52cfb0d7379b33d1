"""A support agent step with OpenAI tool calls."""

from __future__ import annotations

import openai
import pydantic

from .errors import ToolArgumentsError, UnknownToolError


class LookupOrderArgs(pydantic.BaseModel):
    order_id: str
    include_items: bool = False


class RefundArgs(pydantic.BaseModel):
    order_id: str
    amount: float
    reason: str


TOOLS = {"lookup_order": LookupOrderArgs, "refund": RefundArgs}


def dispatch_tool(name: str, arguments: str) -> pydantic.BaseModel:
    """Validate one tool call against the declared tools."""
    if name not in TOOLS:
        raise UnknownToolError(f"Unknown tool '{name}' requested by the model")
    try:
        return TOOLS[name].model_validate_json(arguments)
    except pydantic.ValidationError as e:
        raise ToolArgumentsError(f"Invalid arguments for tool '{name}': {e}") from e


def run_agent_step(client: openai.OpenAI, model: str, question: str) -> list[pydantic.BaseModel]:
    """Ask the model, then validate the tool calls it makes."""
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        tools=[{"type": "function", "function": {"name": n, "parameters": {}}} for n in TOOLS],
    )
    calls = response.choices[0].message.tool_calls or []
    return [dispatch_tool(c.function.name, c.function.arguments) for c in calls]
