"""The one exception type the API turns into ``{"error": {"code", "message"}}`` with a 4xx status
(and ``field``, the request field at fault, when the error is about one)."""

from __future__ import annotations


class BankError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None,
                 field: str | None = None) -> None:
        assert 400 <= status < 600, status
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after  # seconds, sent as Retry-After
        self.field = field  # a client shows the error at that field, in its own words

    def body(self) -> dict[str, dict[str, str]]:
        detail = {"code": self.code, "message": self.message}
        if self.field is not None:
            detail["field"] = self.field
        return {"error": detail}
