"""The one exception type the API turns into ``{"error": {"code", "message"}}`` with a 4xx status."""

from __future__ import annotations


class BankError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        assert 400 <= status < 600, status
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after  # seconds, sent as Retry-After

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}
