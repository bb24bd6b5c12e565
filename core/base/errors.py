"""Exceptions shared by the engine and the decoders."""


class DecodeError(ValueError):
    """Bytes that do not decode as what they claim to be.  ``offset`` is relative to the input."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


class LimitExceeded(DecodeError):
    """Input that would need more resources than the configured limits allow."""
