"""The message catalogue: one frozen msgspec Struct per message, tagged by its type code.

On the wire a message is a msgpack array ``[type, field1, field2, ...]`` in the order the
fields are declared here (msgspec's ``array_like``, with the type code as the tag).
Client-to-server types are 1..63, server-to-client 64..127. Each field's annotation is its
whole specification (``protocol.fields``): the codec checks every inbound value against it.
msgspec was chosen over our own validators by measurement (benchmarks/codec.py: 20x faster
decoding 1,000 clients' inputs, the same answers on a corpus of good and bad frames).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from .fields import (
    CHANNEL,
    CLEAN,
    CODE,
    COLOUR,
    CURRENCY,
    ENTITY,
    I32,
    ID,
    MESSAGE,
    MONEY,
    MOTION,
    NAME,
    QPOS,
    TIME,
    TOKEN,
    U8,
    U16,
    U32,
    UNIT,
    YAW_Q,
    stripped,
)
from .limits import (
    MAX_CHAT_LEN,
    MAX_COORD,
    MAX_HOLD_TICKS,
    MAX_NAME_LEN,
    MAX_ORDER_QTY,
    MAX_PROOF_LEN,
    MAX_REPORT_LEN,
    MAX_SEQ,
    MAX_TICKET_LEN,
    MIN_NAME_LEN,
)

QTY = Annotated[int, Meta(ge=1, le=MAX_ORDER_QTY)]
STATUS = Annotated[str, Meta(min_length=1, max_length=24), CLEAN]


class Channel(IntEnum):
    PROXIMITY = 0  # everyone within CHAT_PROXIMITY_RADIUS of the speaker
    BOOTH = 1  # everyone at the same booth as the speaker
    ANNOUNCEMENT = 2  # the whole hall; booth staff only


class Motion(IntEnum):
    IDLE = 0
    WALK = 1
    RUN = 2


class Record(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A value on the wire as an array of its fields, in declaration order."""


class Message(Record, frozen=True):
    """Base of every message: ``TYPE`` is its tag, set by ``_register``."""

    TYPE: ClassVar[int]


CLIENT_MESSAGES: dict[int, type[Message]] = {}
SERVER_MESSAGES: dict[int, type[Message]] = {}


def _register(cls: type[Message]) -> type[Message]:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, int), f"{cls.__name__} needs an integer tag"
    table = CLIENT_MESSAGES if tag < 64 else SERVER_MESSAGES
    assert tag not in table and 0 < tag < 128, f"type {tag} of {cls.__name__}"
    cls.TYPE = tag
    table[tag] = cls
    return cls


# --------------------------------------------------------------------------- records


class EntityState(Record, frozen=True):
    """An avatar's quantised dynamic state: position in cm, yaw in YAW_STEPS, motion."""

    x: QPOS
    y: QPOS
    yaw: YAW_Q
    motion: MOTION


class EntityInfo(Record, frozen=True):
    """What a client learns once when an avatar enters its view."""

    entity: ENTITY
    name: NAME
    colour: COLOUR
    style: U8
    staff_of: ID | None  # booth id when the avatar is booth staff
    state: EntityState


class OwnState(Record, frozen=True):
    """The receiver's own avatar, always absolute so prediction can reconcile. Flat on the
    wire, ``[hall, x, y, yaw, motion]``; ``state`` gives the four as an EntityState."""

    hall: U8  # index into the manifest's halls
    x: QPOS
    y: QPOS
    yaw: YAW_Q
    motion: MOTION

    @classmethod
    def of(cls, hall: int, state: EntityState) -> OwnState:
        return cls(hall, state.x, state.y, state.yaw, state.motion)

    @property
    def state(self) -> EntityState:
        return EntityState(self.x, self.y, self.yaw, self.motion)


# --------------------------------------------------------------------------- client -> server


@_register
class Hello(Message, tag=1, frozen=True):
    version: U16
    name: Annotated[str, stripped(MIN_NAME_LEN, MAX_NAME_LEN)]
    colour: COLOUR
    style: U8  # avatar body style
    resume_token: TOKEN | None = None
    staff_pass: TOKEN | None = None  # "booth:signature", lets booth staff make announcements
    visitor_token: TOKEN | None = None  # from an earlier Welcome: who this visitor is (None: a first visit)
    ticket: Annotated[str, stripped(1, MAX_TICKET_LEN)] | None = None  # on a server that admits by ticket
    transfer: TOKEN | None = None  # from a Transfer: the seat another hall process reserved for you (cluster)


@_register
class Input(Message, tag=2, frozen=True):
    """Intent to move. (move_x, move_y) is a direction in hall axes, length <= 1.

    It holds for ``ticks`` ticks, numbered ``seq`` to ``seq + ticks - 1``, or until the next
    Input's ``seq``, whichever comes first: a walk in a straight line is one frame a
    second, not one a tick."""

    seq: Annotated[int, Meta(ge=1, le=MAX_SEQ)]  # 0 is no input: a Snapshot's ack before the first
    move_x: UNIT
    move_y: UNIT
    yaw: Annotated[float, Meta(ge=-7.0, le=7.0)]  # radians; a little beyond +-2pi is tolerated
    run: bool
    ticks: Annotated[int, Meta(ge=1, le=MAX_HOLD_TICKS)] = 1


@_register
class Chat(Message, tag=3, frozen=True):
    channel: CHANNEL
    text: Annotated[str, stripped(1, MAX_CHAT_LEN)]


@_register
class Ping(Message, tag=4, frozen=True):
    client_time: TIME


@_register
class Order(Message, tag=5, frozen=True):
    """Buy qty of sku at booth; key is the client's idempotency key for this order."""

    booth: ID
    sku: ID
    qty: QTY
    key: TOKEN


@_register
class OrderPaid(Message, tag=6, frozen=True):
    """The client confirmed the order's payment intent at the bank; the server verifies."""

    order_id: TOKEN


@_register
class CancelOrder(Message, tag=7, frozen=True):
    order_id: TOKEN


@_register
class QueryStock(Message, tag=8, frozen=True):
    booth: ID


@_register
class QueryInventory(Message, tag=9, frozen=True):
    pass


@_register
class Bye(Message, tag=10, frozen=True):
    """The client leaves for good: its avatar goes at once and its resume token dies."""


@_register
class Report(Message, tag=24, frozen=True):
    """A visitor reports another to the organisers (abuse, spam); the server answers nothing."""

    entity: ENTITY  # the avatar reported, as Enter named it
    reason: Annotated[str, stripped(1, MAX_REPORT_LEN)]


@_register
class LinkAccount(Message, tag=11, frozen=True):
    """The bank's proof that an account is this visitor's (``POST /v1/accounts/me/proofs``
    with the visitor id as audience): their orders become payable from it alone."""

    proof: Annotated[str, Meta(min_length=1, max_length=MAX_PROOF_LEN), CLEAN]


@_register
class DirectMessage(Message, tag=12, frozen=True):
    """A private line to one person, by the name others see them by (``Welcome.display_name``,
    with its tag when two share a name), wherever in the expo they are."""

    to: NAME
    text: Annotated[str, stripped(1, MAX_CHAT_LEN)]


@_register
class FindPerson(Message, tag=13, frozen=True):
    """Where is this person (by display name)? The answer is a PersonFound."""

    name: NAME


# --------------------------------------------------------------------------- server -> client


@_register
class Welcome(Message, tag=64, frozen=True):
    session_id: TOKEN
    entity: ENTITY
    tick_rate: Annotated[int, Meta(ge=1, le=240)]
    server_time: TIME
    resume_token: TOKEN
    view_radius: Annotated[float, Meta(ge=0.0, le=MAX_COORD)]
    own: OwnState
    bank_url: Annotated[str, Meta(max_length=512), CLEAN] | None  # where the client opens its account and pays
    manifest: dict[str, Any]  # the expo: halls, booths, catalogues (world.manifest format)
    visitor_id: TOKEN  # who you are here, across sessions and restarts
    visitor_token: TOKEN  # keep it (privately) and send it in every later Hello
    display_name: NAME  # your name as others see it: with a tag when someone here has the same name


@_register
class Refused(Message, tag=65, frozen=True):
    code: CODE
    message: MESSAGE


# Types 66 (Enter) and 67 (Leave) were messages of their own until protocol 3; they are not reused.


@_register
class Snapshot(Message, tag=68, frozen=True):
    """The one message of each tick (protocol 3): the avatars that left the client's view,
    the ones that entered it (with their static data and full state), the client's own
    state and ``deltas``, a flat list of 5-tuples ``gap, dx, dy, dyaw, motion`` for the
    visible avatars whose quantised state changed since the last snapshot sent to this
    client, by entity; ``gap`` is the entity id less the previous tuple's (the first's less
    0: protocol 4, so most ids take one byte); dyaw wraps into [-32768, 32767]. Applied in
    that order: leaves, enters, deltas."""

    tick: U32
    server_time: TIME
    ack: Annotated[int, Meta(ge=0, le=MAX_SEQ)]  # the last input seq the server applied for this client
    own: OwnState
    leaves: Annotated[tuple[ENTITY, ...], Meta(max_length=4096)]  # left the view (or the expo) since the last
    enters: Annotated[tuple[EntityInfo, ...], Meta(max_length=4096)]  # entered it
    deltas: Annotated[tuple[I32, ...], Meta(max_length=5 * 4096)]


@_register
class ChatLine(Message, tag=69, frozen=True):
    channel: CHANNEL
    entity: ENTITY
    name: NAME
    text: Annotated[str, Meta(min_length=1, max_length=MAX_CHAT_LEN), CLEAN]
    booth: ID | None
    server_time: TIME


@_register
class Pong(Message, tag=70, frozen=True):
    client_time: TIME
    server_time: TIME


@_register
class Error(Message, tag=71, frozen=True):
    """A frame was rejected; the connection stays open. ``ref`` echoes the message type."""

    code: CODE
    message: MESSAGE
    ref: U8


@_register
class Closing(Message, tag=72, frozen=True):
    """The server is about to close the connection, and why."""

    code: CODE
    message: MESSAGE


@_register
class OrderStatus(Message, tag=73, frozen=True):
    """An order changed state: pending_payment, paid, fulfilled, canceled, expired, failed."""

    order_id: TOKEN
    key: TOKEN
    status: STATUS
    booth: ID
    sku: ID
    qty: QTY
    amount: MONEY
    currency: CURRENCY
    intent_id: TOKEN | None
    expires_at: TIME | None
    message: MESSAGE


@_register
class Receipt(Message, tag=74, frozen=True):
    order_id: TOKEN
    booth: ID
    sku: ID
    product_name: Annotated[str, Meta(max_length=128), CLEAN]
    qty: QTY
    amount: MONEY
    currency: CURRENCY
    intent_id: TOKEN
    settled_at: TIME


@_register
class Stock(Message, tag=75, frozen=True):
    booth: ID
    items: Annotated[tuple[tuple[ID, Annotated[int, Meta(ge=0)]], ...], Meta(max_length=256)]  # (sku, units left)


@_register
class BoothEffect(Message, tag=76, frozen=True):
    """Something visible happened at a booth (a sale), for everyone nearby."""

    booth: ID
    kind: STATUS
    entity: ENTITY


@_register
class Inventory(Message, tag=77, frozen=True):
    # (booth, sku, product name, qty)
    items: Annotated[tuple[tuple[ID, ID, Annotated[str, Meta(max_length=128), CLEAN], Annotated[int, Meta(ge=0)]], ...],
                     Meta(max_length=1024)]


@_register
class ExpoUpdate(Message, tag=78, frozen=True):
    """The world files changed and the server applied them: the new manifest, whole."""

    manifest: dict[str, Any]


@_register
class AccountLinked(Message, tag=79, frozen=True):
    """The bank account your LinkAccount proved is now the only one your orders take."""

    account_id: TOKEN


@_register
class Transfer(Message, tag=80, frozen=True):
    """Cluster: your avatar goes on at another hall process. Connect to ``url`` and send a
    Hello with ``transfer=token`` (and your visitor token) within ``expires_in`` seconds;
    the token works once. This process keeps your avatar until that process confirms."""

    url: Annotated[str, Meta(min_length=1, max_length=512), CLEAN]  # ws:// or wss://
    token: TOKEN
    expires_in: Annotated[float, Meta(ge=0.0, le=3600.0)]  # seconds from now
    hall: ID  # the hall you will be in there


@_register
class Servers(Message, tag=81, frozen=True):
    """Cluster: the other hall processes of this expo, to reconnect to (with your visitor
    token) when this one stops answering. Sent after Welcome and whenever the list changes."""

    urls: Annotated[tuple[Annotated[str, Meta(min_length=1, max_length=512), CLEAN], ...], Meta(max_length=64)]


@_register
class DirectLine(Message, tag=82, frozen=True):
    """A direct message: to you from ``name`` (``incoming``), or yours to ``name``, delivered."""

    name: NAME
    text: Annotated[str, Meta(min_length=1, max_length=MAX_CHAT_LEN), CLEAN]
    incoming: bool
    server_time: TIME


@_register
class PersonFound(Message, tag=83, frozen=True):
    """The answer to FindPerson: ``hall`` is where they are (a hall id), None when offline."""

    name: NAME
    online: bool
    hall: ID | None


ClientMessage = (Hello | Input | Chat | Ping | Order | OrderPaid | CancelOrder | QueryStock | QueryInventory | Bye
                 | LinkAccount | DirectMessage | FindPerson)
