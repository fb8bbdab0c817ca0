"""What the client core tells the application: one frozen record per thing that happened.

Records that mirror a server message one to one carry that message rather than copying
its fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import protocol as p
from world.model import Expo


@dataclass(frozen=True, slots=True)
class Joined:
    """Welcome arrived: the avatar exists. ``resumed`` when it is the same avatar as before."""

    welcome: p.Welcome
    expo: Expo
    resumed: bool
    connect_time: float | None  # seconds from connection_made to Welcome
    transferred: bool = False  # a new session at another hall process, after a Transfer (cluster)


@dataclass(frozen=True, slots=True)
class AccountLinked:
    """The server takes our orders' payment from this bank account only."""

    account_id: str


@dataclass(frozen=True, slots=True)
class ExpoChanged:
    """The server applied edited world files: ``expo`` replaces ``previous`` (None when
    the change came before any Welcome had an expo)."""

    expo: Expo
    previous: Expo | None


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Entered:
    """Avatars came into view, ``count`` of them. A core without a view (a bot) leaves
    ``entities`` empty: building their records was an eighth of a bot's CPU, for nothing."""

    entities: tuple[p.EntityInfo, ...]
    count: int


@dataclass(frozen=True, slots=True)
class Left:
    entities: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SnapshotReceived:
    """One tick's state arrived. ``delivery`` is how long after the server stamped it the
    client got it, on the synchronised clock (None before any clock reading);
    ``ack_latency`` is the time from sending input ``ack`` to this acknowledgement, when
    this snapshot newly acknowledges an input."""

    tick: int
    server_time: float
    received_at: float
    ack: int
    hall: int
    changed: int
    size: int
    delivery: float | None
    ack_latency: float | None


@dataclass(frozen=True, slots=True)
class PredictionCorrected:
    """The own avatar's prediction disagreed with the server and was redone."""

    ack: int
    error: float  # metres; inf when a portal moved the avatar
    hall_changed: bool


@dataclass(frozen=True, slots=True)
class PongReceived:
    rtt: float
    offset: float


@dataclass(frozen=True, slots=True)
class ChatReceived:
    line: p.ChatLine


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    status: p.OrderStatus


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    receipt: p.Receipt


@dataclass(frozen=True, slots=True)
class StockReceived:
    stock: p.Stock


@dataclass(frozen=True, slots=True)
class InventoryReceived:
    inventory: p.Inventory


@dataclass(frozen=True, slots=True)
class BoothEffectSeen:
    effect: p.BoothEffect


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """The server rejected one of our frames; the connection stays open."""

    code: str
    message: str
    ref: int


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The server sent something this client cannot accept (an undecodable frame, a delta
    for an avatar not in view). The frame is ignored; a well-behaved server never does this."""

    detail: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The server said it is closing the connection (Closing frame), or the socket went.
    ``resumable`` when reconnecting with the resume token should bring the avatar back."""

    code: str
    message: str
    resumable: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is gone (from the transport, not the server). ``retry_in`` is the
    delay before the next attempt, None when the transport gives up."""

    reason: str
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class DirectReceived:
    """A direct message to us (``line.incoming``), or ours, delivered."""

    line: p.DirectLine


@dataclass(frozen=True, slots=True)
class PersonLocated:
    """The answer to core.find_person."""

    found: p.PersonFound


@dataclass(frozen=True, slots=True)
class Transferring:
    """Cluster: the avatar goes on at another hall process (``hall`` there); the transport
    reconnects to ``url`` at once. ``at_hello``: sent instead of a Welcome (no avatar yet)."""

    url: str
    hall: str
    at_hello: bool


Event = (
    Transferring | DirectReceived | PersonLocated | Joined | ExpoChanged | Refused | Entered | Left | SnapshotReceived | PredictionCorrected | PongReceived | ChatReceived
    | OrderUpdated | ReceiptReceived | StockReceived | InventoryReceived | BoothEffectSeen | ErrorReceived
    | ProtocolViolation | Closed | Disconnected | AccountLinked
)


# Cards and meetings (protocol/people.py): each record carries its server message.


@dataclass(frozen=True, slots=True)
class CardSaved:
    message: p.CardSaved


@dataclass(frozen=True, slots=True)
class CardOffered:
    """Someone offers their card; answer with ``core.answer_card``. Their card comes only
    after you accept."""

    message: p.CardOffered


@dataclass(frozen=True, slots=True)
class CardAnswered:
    message: p.CardAnswer


@dataclass(frozen=True, slots=True)
class CardShown:
    message: p.CardShown


@dataclass(frozen=True, slots=True)
class SlotsReceived:
    message: p.Slots


@dataclass(frozen=True, slots=True)
class BookingUpdated:
    message: p.Booking


@dataclass(frozen=True, slots=True)
class MeetingReminded:
    """A meeting starts in a few minutes: offer to walk to ``message.booth``."""

    message: p.MeetingReminder


@dataclass(frozen=True, slots=True)
class DealUpdated:
    """A deal of yours (or of your booth, as staff) as it stands: see protocol/README, B2B deals."""

    message: p.DealStatus


@dataclass(frozen=True, slots=True)
class CollectiblesReceived:
    """The certificates you hold, each with its serial and the bank's verification URL."""

    message: p.Collectibles


PEOPLE_EVENTS: dict[type, type] = {  # with deals and collectibles, answered the same way
    p.CardSaved: CardSaved, p.CardOffered: CardOffered, p.CardAnswer: CardAnswered, p.CardShown: CardShown,
    p.Slots: SlotsReceived, p.Booking: BookingUpdated, p.MeetingReminder: MeetingReminded,
    p.DealStatus: DealUpdated, p.Collectibles: CollectiblesReceived,
}
PeopleEvent = CardSaved | CardOffered | CardAnswered | CardShown | SlotsReceived | BookingUpdated | MeetingReminded
