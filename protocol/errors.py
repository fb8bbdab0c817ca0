"""Error and refusal codes, shared by the wire and the exceptions that carry them."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    # bad input: the frame is dropped, the connection stays open
    BAD_FRAME = "bad_frame"  # not msgpack, not an array, trailing bytes
    UNKNOWN_TYPE = "unknown_type"  # no such message type (for this direction)
    BAD_FIELD = "bad_field"  # wrong count, type, range, length or characters
    TOO_LARGE = "too_large"  # frame over the size limit
    NOT_JOINED = "not_joined"  # anything but hello before welcome
    ALREADY_JOINED = "already_joined"  # a second hello
    RATE_LIMITED = "rate_limited"  # chat or orders too fast; the message is dropped
    NOT_ALLOWED = "not_allowed"  # e.g. an announcement from a non-staff visitor
    UNKNOWN_BOOTH = "unknown_booth"
    UNKNOWN_PRODUCT = "unknown_product"
    # cards and meetings (protocol/people.py)
    BAD_CARD = "bad_card"  # a card field is not acceptable (the message names it)
    NO_CARD = "no_card"  # set your card first
    COOLDOWN = "cooldown"  # they declined your card recently
    EXPIRED = "expired"  # the offer is no longer open
    UNKNOWN = "unknown"  # no such offer, slot or booking of yours
    TAKEN = "taken"  # someone else booked that slot
    CONFLICT = "conflict"  # it clashes with another slot or meeting of yours
    BUSY = "busy"  # the server has too much of this work in hand right now; try again shortly
    BAD_INCOTERM = "bad_incoterm"  # not one of ICC 2020's eleven Incoterms
    WRONG_STATE = "wrong_state"  # the deal is not in a state that allows this
    BAD_DEPOSIT = "bad_deposit"  # the escrow named is not the deal's deposit (the message says why)
    BANK_ERROR = "bank_error"  # the bank refused or could not be reached (the message says which)
    # refusals at hello: the server closes after sending them
    VERSION_MISMATCH = "version_mismatch"
    NAME_INVALID = "name_invalid"
    NAME_TAKEN = "name_taken"
    SERVER_FULL = "server_full"
    RESUME_FAILED = "resume_failed"
    BANNED = "banned"  # the organiser banned this visitor (the message says why and until when)
    TICKET_INVALID = "ticket_invalid"  # admission is by ticket, and this one is missing or unknown
    TRANSFER_FAILED = "transfer_failed"  # Hello.transfer is unknown, used already or expired (cluster)
    # reasons for the server to close a session
    FLOOD = "flood"  # too many frames or too many bad frames
    TOO_SLOW = "too_slow"  # the client stopped reading
    SHUTDOWN = "shutdown"  # the server is stopping
    REPLACED = "replaced"  # the session was resumed on another connection
    TIMEOUT = "timeout"  # no hello in time, or silent too long
    KICKED = "kicked"  # the organiser removed this visitor from the expo


class ProtocolError(Exception):
    """Raised by decoding and validation; carries the code sent back to the peer."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
