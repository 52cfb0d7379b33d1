"""A small model-backed shop application used to produce a labelled failure corpus.

Its functions call the real openai and anthropic clients (against a scripted
HTTP transport, see ``transport``), parse and validate outputs with json,
pydantic and jsonschema, dispatch tool calls, and contain ordinary bugs.
Failures therefore carry real library messages and real tracebacks with
in-app frames from this package.
"""
