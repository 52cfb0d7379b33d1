"""Application exceptions of the shop."""


class ModelOutputError(Exception):
    """The model answered, but not in a usable way."""

    def __init__(self, category: str, message: str, output: str | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.output = output


class OrderNotFound(LookupError):
    """No such order for this customer."""


class InventoryError(RuntimeError):
    """A stock problem."""


class UnknownToolError(Exception):
    """The model called a tool that is not declared."""


class ToolArgumentsError(Exception):
    """The model called a declared tool with invalid arguments."""
