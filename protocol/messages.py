"""The message catalogue: one frozen dataclass per message, a type code, typed fields.

On the wire a message is a msgpack array ``[type, field1, field2, ...]`` in the order the
fields are declared here. Client-to-server types are 1..63, server-to-client 64..127.
Each field's validator (``FIELDS``) is applied to every inbound value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar

from . import fields as f
from .limits import (
    MAX_CHAT_LEN,
    MAX_COORD,
    MAX_HOLD_TICKS,
    MAX_ID_LEN,
    MAX_NAME_LEN,
    MAX_ORDER_QTY,
    MAX_REPORT_LEN,
    MAX_SEQ,
    MAX_TOKEN_LEN,
    MIN_NAME_LEN,
    YAW_STEPS,
)

U32 = f.integer(0, 2**32 - 1)
I32 = f.integer(-(2**31), 2**31 - 1)
U16 = f.integer(0, 2**16 - 1)
ENTITY = f.integer(0, 2**31 - 1)
TIME = f.number(0.0, 1e12)  # seconds
QPOS = f.integer(0, int(MAX_COORD * 100))  # a quantised coordinate, centimetres
YAW_Q = f.integer(0, YAW_STEPS - 1)
COLOUR = f.integer(0, 0xFFFFFF)  # 0xRRGGBB
ID = f.text(MAX_ID_LEN, 1)
TOKEN = f.text(MAX_TOKEN_LEN, 1)
MONEY = f.text(32, 1)  # a decimal string in the currency's major unit, e.g. "12.50"
CURRENCY = f.text(3, 3)


class Channel(IntEnum):
    PROXIMITY = 0  # everyone within CHAT_PROXIMITY_RADIUS of the speaker
    BOOTH = 1  # everyone at the same booth as the speaker
    ANNOUNCEMENT = 2  # the whole hall; booth staff only


class Motion(IntEnum):
    IDLE = 0
    WALK = 1
    RUN = 2


class Message:
    """Base of every message; subclasses are frozen slotted dataclasses."""

    __slots__ = ()
    TYPE: ClassVar[int]
    FIELDS: ClassVar[tuple[f.Validator, ...]]

    NAMES: ClassVar[tuple[str, ...]]  # field names in wire order, set by _register

    def to_wire(self) -> list[Any]:
        return [self.TYPE, *(_to_wire(getattr(self, name)) for name in self.NAMES)]

    @classmethod
    def from_wire(cls, items: list[Any]) -> Message:
        names = cls.NAMES
        if len(items) != len(names):
            raise f.ProtocolError(
                f.ErrorCode.BAD_FIELD,
                f"{cls.__name__} takes {len(names)} fields, got {len(items)}",
            )
        values = [check(v, f"{cls.__name__}.{n}") for check, v, n in zip(cls.FIELDS, items, names, strict=True)]
        return cls(*values)


def _to_wire(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_wire(v) for v in value]
    if hasattr(value, "to_wire") and not isinstance(value, Message):
        return value.to_wire()
    return value


CLIENT_MESSAGES: dict[int, type[Message]] = {}
SERVER_MESSAGES: dict[int, type[Message]] = {}


def _register(cls: type[Message]) -> type[Message]:
    table = CLIENT_MESSAGES if cls.TYPE < 64 else SERVER_MESSAGES
    assert cls.TYPE not in table, f"duplicate type {cls.TYPE}"
    assert len(cls.FIELDS) == len(fields(cls)), cls.__name__  # type: ignore[arg-type]
    cls.NAMES = tuple(fl.name for fl in fields(cls))  # type: ignore[arg-type]
    table[cls.TYPE] = cls
    return cls


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class EntityState:
    """An avatar's quantised dynamic state: position in cm, yaw in YAW_STEPS, motion."""

    x: int
    y: int
    yaw: int
    motion: int

    def to_wire(self) -> list[int]:
        return [self.x, self.y, self.yaw, self.motion]


def _entity_state(value: Any, name: str) -> EntityState:
    items = f.sequence(f.any_value, 4)(value, name)
    if len(items) != 4:
        raise f.ProtocolError(f.ErrorCode.BAD_FIELD, f"{name}: expected [x, y, yaw, motion]")
    return EntityState(
        QPOS(items[0], f"{name}.x"),
        QPOS(items[1], f"{name}.y"),
        YAW_Q(items[2], f"{name}.yaw"),
        f.integer(0, 2)(items[3], f"{name}.motion"),
    )


@dataclass(frozen=True, slots=True)
class EntityInfo:
    """What a client learns once when an avatar enters its view."""

    entity: int
    name: str
    colour: int
    style: int
    staff_of: str | None  # booth id when the avatar is booth staff
    state: EntityState

    def to_wire(self) -> list[Any]:
        return [self.entity, self.name, self.colour, self.style, self.staff_of, self.state.to_wire()]


def _entity_info(value: Any, name: str) -> EntityInfo:
    items = f.sequence(f.any_value, 6)(value, name)
    if len(items) != 6:
        raise f.ProtocolError(f.ErrorCode.BAD_FIELD, f"{name}: expected 6 fields")
    return EntityInfo(
        ENTITY(items[0], f"{name}.entity"),
        f.text(MAX_NAME_LEN, 1)(items[1], f"{name}.name"),
        COLOUR(items[2], f"{name}.colour"),
        f.integer(0, 255)(items[3], f"{name}.style"),
        f.optional(ID)(items[4], f"{name}.staff_of"),
        _entity_state(items[5], f"{name}.state"),
    )


@dataclass(frozen=True, slots=True)
class OwnState:
    """The receiver's own avatar, always absolute so prediction can reconcile."""

    hall: int  # index into the manifest's halls
    state: EntityState

    def to_wire(self) -> list[Any]:
        return [self.hall, *self.state.to_wire()]


def _own_state(value: Any, name: str) -> OwnState:
    items = f.sequence(f.any_value, 5)(value, name)
    if len(items) != 5:
        raise f.ProtocolError(f.ErrorCode.BAD_FIELD, f"{name}: expected [hall, x, y, yaw, motion]")
    return OwnState(f.integer(0, 255)(items[0], f"{name}.hall"), _entity_state(items[1:], name))


# --------------------------------------------------------------------------- client -> server


@_register
@dataclass(frozen=True, slots=True)
class Hello(Message):
    TYPE: ClassVar[int] = 1
    FIELDS: ClassVar = (
        f.integer(0, 65535),
        f.text(MAX_NAME_LEN, MIN_NAME_LEN, strip=True),
        COLOUR,
        f.integer(0, 255),
        f.optional(TOKEN),
        f.optional(TOKEN),
    )
    version: int
    name: str
    colour: int
    style: int
    resume_token: str | None = None
    staff_pass: str | None = None  # "booth:signature", lets booth staff make announcements


@_register
@dataclass(frozen=True, slots=True)
class Input(Message):
    """Intent to move. (move_x, move_y) is a direction in hall axes, length <= 1.

    It holds for ``ticks`` ticks, numbered ``seq`` to ``seq + ticks - 1``, or until the next
    Input's ``seq``, whichever comes first: a walk in a straight line is one frame a
    second, not one a tick."""

    TYPE: ClassVar[int] = 2
    FIELDS: ClassVar = (
        f.integer(1, MAX_SEQ),  # 0 is no input: a Snapshot's ack before the first
        f.number(-1.0, 1.0),
        f.number(-1.0, 1.0),
        f.number(-7.0, 7.0),  # radians; a little beyond +-2pi is tolerated
        f.boolean,
        f.integer(1, MAX_HOLD_TICKS),
    )
    seq: int
    move_x: float
    move_y: float
    yaw: float
    run: bool
    ticks: int = 1


@_register
@dataclass(frozen=True, slots=True)
class Chat(Message):
    TYPE: ClassVar[int] = 3
    FIELDS: ClassVar = (f.integer(0, 2), f.text(MAX_CHAT_LEN, 1, strip=True))
    channel: int
    text: str


@_register
@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE: ClassVar[int] = 4
    FIELDS: ClassVar = (TIME,)
    client_time: float


@_register
@dataclass(frozen=True, slots=True)
class Order(Message):
    """Buy qty of sku at booth; key is the client's idempotency key for this order."""

    TYPE: ClassVar[int] = 5
    FIELDS: ClassVar = (ID, ID, f.integer(1, MAX_ORDER_QTY), TOKEN)
    booth: str
    sku: str
    qty: int
    key: str


@_register
@dataclass(frozen=True, slots=True)
class OrderPaid(Message):
    """The client confirmed the order's payment intent at the bank; the server verifies."""

    TYPE: ClassVar[int] = 6
    FIELDS: ClassVar = (TOKEN,)
    order_id: str


@_register
@dataclass(frozen=True, slots=True)
class CancelOrder(Message):
    TYPE: ClassVar[int] = 7
    FIELDS: ClassVar = (TOKEN,)
    order_id: str


@_register
@dataclass(frozen=True, slots=True)
class QueryStock(Message):
    TYPE: ClassVar[int] = 8
    FIELDS: ClassVar = (ID,)
    booth: str


@_register
@dataclass(frozen=True, slots=True)
class QueryInventory(Message):
    TYPE: ClassVar[int] = 9
    FIELDS: ClassVar = ()


@_register
@dataclass(frozen=True, slots=True)
class Bye(Message):
    """The client leaves for good: its avatar goes at once and its resume token dies."""

    TYPE: ClassVar[int] = 10
    FIELDS: ClassVar = ()


@_register
@dataclass(frozen=True, slots=True)
class Report(Message):
    """A visitor reports another to the organisers (abuse, spam); the server answers nothing."""

    TYPE: ClassVar[int] = 24
    FIELDS: ClassVar = (ENTITY, f.text(MAX_REPORT_LEN, 1, strip=True))
    entity: int  # the avatar reported, as Enter named it
    reason: str


# --------------------------------------------------------------------------- server -> client


@_register
@dataclass(frozen=True, slots=True)
class Welcome(Message):
    TYPE: ClassVar[int] = 64
    FIELDS: ClassVar = (
        TOKEN,
        ENTITY,
        f.integer(1, 240),
        TIME,
        TOKEN,
        f.number(0.0, MAX_COORD),
        _own_state,
        f.optional(f.text(512)),
        f.mapping,
    )
    session_id: str
    entity: int
    tick_rate: int
    server_time: float
    resume_token: str
    view_radius: float
    own: OwnState
    bank_url: str | None  # where the client opens its account and pays
    manifest: dict  # the expo: halls, booths, catalogues (world.manifest format)


@_register
@dataclass(frozen=True, slots=True)
class Refused(Message):
    TYPE: ClassVar[int] = 65
    FIELDS: ClassVar = (f.text(32, 1), f.text(512))
    code: str
    message: str


@_register
@dataclass(frozen=True, slots=True)
class Enter(Message):
    TYPE: ClassVar[int] = 66
    FIELDS: ClassVar = (f.sequence(_entity_info, 4096),)
    entities: tuple[EntityInfo, ...]


@_register
@dataclass(frozen=True, slots=True)
class Leave(Message):
    TYPE: ClassVar[int] = 67
    FIELDS: ClassVar = (f.sequence(ENTITY, 4096),)
    entities: tuple[int, ...]


@_register
@dataclass(frozen=True, slots=True)
class Snapshot(Message):
    """State at one tick. ``deltas`` is a flat list of 5-tuples
    ``entity, dx, dy, dyaw, motion`` for the visible avatars whose quantised state changed
    since the last snapshot sent to this client; dyaw wraps into [-32768, 32767]."""

    TYPE: ClassVar[int] = 68
    FIELDS: ClassVar = (U32, TIME, f.integer(0, MAX_SEQ), _own_state, f.sequence(I32, 5 * 4096))
    tick: int
    server_time: float
    ack: int  # the last input seq the server applied for this client
    own: OwnState
    deltas: tuple[int, ...]


@_register
@dataclass(frozen=True, slots=True)
class ChatLine(Message):
    TYPE: ClassVar[int] = 69
    FIELDS: ClassVar = (
        f.integer(0, 2),
        ENTITY,
        f.text(MAX_NAME_LEN, 1),
        f.text(MAX_CHAT_LEN, 1),
        f.optional(ID),
        TIME,
    )
    channel: int
    entity: int
    name: str
    text: str
    booth: str | None
    server_time: float


@_register
@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[int] = 70
    FIELDS: ClassVar = (TIME, TIME)
    client_time: float
    server_time: float


@_register
@dataclass(frozen=True, slots=True)
class Error(Message):
    """A frame was rejected; the connection stays open. ``ref`` echoes the message type."""

    TYPE: ClassVar[int] = 71
    FIELDS: ClassVar = (f.text(32, 1), f.text(512), f.integer(0, 255))
    code: str
    message: str
    ref: int


@_register
@dataclass(frozen=True, slots=True)
class Closing(Message):
    """The server is about to close the connection, and why."""

    TYPE: ClassVar[int] = 72
    FIELDS: ClassVar = (f.text(32, 1), f.text(512))
    code: str
    message: str


@_register
@dataclass(frozen=True, slots=True)
class OrderStatus(Message):
    """An order changed state: pending_payment, paid, fulfilled, canceled, expired, failed."""

    TYPE: ClassVar[int] = 73
    FIELDS: ClassVar = (
        TOKEN,
        TOKEN,
        f.text(24, 1),
        ID,
        ID,
        f.integer(1, MAX_ORDER_QTY),
        MONEY,
        CURRENCY,
        f.optional(TOKEN),
        f.optional(TIME),
        f.text(512),
    )
    order_id: str
    key: str
    status: str
    booth: str
    sku: str
    qty: int
    amount: str
    currency: str
    intent_id: str | None
    expires_at: float | None
    message: str


@_register
@dataclass(frozen=True, slots=True)
class Receipt(Message):
    TYPE: ClassVar[int] = 74
    FIELDS: ClassVar = (TOKEN, ID, ID, f.text(128), f.integer(1, MAX_ORDER_QTY), MONEY, CURRENCY, TOKEN, TIME)
    order_id: str
    booth: str
    sku: str
    product_name: str
    qty: int
    amount: str
    currency: str
    intent_id: str
    settled_at: float


@_register
@dataclass(frozen=True, slots=True)
class Stock(Message):
    TYPE: ClassVar[int] = 75
    FIELDS: ClassVar = (ID, f.sequence(f.sequence(f.any_value, 2), 256))
    booth: str
    items: tuple[tuple[str, int], ...]  # (sku, units left)


@_register
@dataclass(frozen=True, slots=True)
class BoothEffect(Message):
    """Something visible happened at a booth (a sale), for everyone nearby."""

    TYPE: ClassVar[int] = 76
    FIELDS: ClassVar = (ID, f.text(24, 1), ENTITY)
    booth: str
    kind: str
    entity: int


@_register
@dataclass(frozen=True, slots=True)
class Inventory(Message):
    TYPE: ClassVar[int] = 77
    FIELDS: ClassVar = (f.sequence(f.sequence(f.any_value, 4), 1024),)
    items: tuple[tuple[str, str, str, int], ...]  # (booth, sku, product name, qty)


@_register
@dataclass(frozen=True, slots=True)
class ExpoUpdate(Message):
    """The world files changed and the server applied them: the new manifest, whole."""

    TYPE: ClassVar[int] = 78
    FIELDS: ClassVar = (f.mapping,)
    manifest: dict


ClientMessage = Hello | Input | Chat | Ping | Order | OrderPaid | CancelOrder | QueryStock | QueryInventory | Bye
