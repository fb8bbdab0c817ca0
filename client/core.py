"""The client's protocol state machine, sans I/O: frames and the time in, frames to send and
events out.

It knows nothing of sockets or event loops (the transport in ``client.transport`` does), so
the desktop client, the bots and the tests all drive the same logic, the tests by plain
calls with invented times. Time is always passed in (seconds on any monotonic clock of the
caller's), never read.

One core lives across reconnections: ``connection_made`` starts a handshake (resuming the
avatar when a resume token is known), ``connection_lost`` forgets the per-connection state.
Input sequence numbers belong to a session, as the spec says: a fresh join starts them again
at 1 (the new session's ``ack`` is 0), a resume continues after every tick the server may have
applied (the end of the longest hold sent), so the first Input after it is never stale.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

import msgpack

import protocol as p
from protocol.limits import MAX_HOLD_TICKS, MAX_SEQ, POSITION_SCALE
from world.manifest import from_manifest
from world.model import Expo
from world.motion import HallGeometry

from . import events as ev
from .interpolation import Pose
from .link_timing import LinkTiming
from .prediction import Predictor
from .view import RemotePose, ViewError, WorldView


class ClientState(Enum):
    DISCONNECTED = "disconnected"
    JOINING = "joining"  # Hello sent, waiting for Welcome
    JOINED = "joined"
    CLOSED = "closed"  # left for good (Bye sent, or refused for a reason retrying cannot fix)


class NotJoined(RuntimeError):
    """A command that needs an avatar was called before Welcome or after leaving."""


# Refusals that a retry would meet again: the transport gives up on these.
FATAL_REFUSALS = frozenset({"version_mismatch", "name_invalid", "name_taken", "not_allowed", "ticket_invalid"})
# Closings after which the old avatar is gone or belongs to another connection.
FINAL_CLOSINGS = frozenset({"replaced", "flood"})


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything to draw at one instant: the own avatar (predicted) and the others
    (interpolated), with the server time they are drawn at."""

    hall: int
    own: Pose
    others: tuple[RemotePose, ...]
    render_time: float


_EXPO_CACHE: dict[bytes, Expo] = {}
_CHEAP_TYPES = frozenset({p.Snapshot.TYPE})


def _expo_of(manifest: dict) -> Expo:
    """Rebuild the expo once per distinct manifest: a swarm of bots in one process gets the
    same manifest hundreds of times."""
    key = hashlib.blake2b(msgpack.packb(manifest), digest_size=16).digest()
    expo = _EXPO_CACHE.get(key)
    if expo is None:
        if len(_EXPO_CACHE) > 8:
            _EXPO_CACHE.clear()
        expo = _EXPO_CACHE[key] = from_manifest(manifest)
    return expo


class ClientCore:
    """One visitor's side of the protocol.

    ``view``: keep the other avatars' state (and, with ``interpolate``, their timelines);
    without it snapshots are only unpacked, not validated or applied (for bots).
    ``predict``: predict the own avatar from the inputs sent.
    ``hold_ticks``: how many ticks an input that moves is sent to hold for. While the
    visitor keeps moving the same way (within ``hold_tolerance``: direction components and
    radians of yaw) no frame is sent until the hold runs out, and the input in force is what
    the prediction applies, as the server does.
    """

    def __init__(
        self,
        name: str,
        colour: int = 0x888888,
        style: int = 0,
        *,
        resume_token: str | None = None,
        staff_pass: str | None = None,
        visitor_token: str | None = None,
        ticket: str | None = None,
        view: bool = True,
        interpolate: bool = True,
        predict: bool = True,
        interpolation_ticks: float = 2.0,
        max_extrapolation: float = 0.25,
        hold_ticks: int = MAX_HOLD_TICKS,
        hold_tolerance: float = 0.02,
    ) -> None:
        if not 1 <= hold_ticks <= MAX_HOLD_TICKS:
            raise ValueError(f"hold_ticks must be 1..{MAX_HOLD_TICKS}, not {hold_ticks}")
        self.name, self.colour, self.style = name, colour, style
        self.staff_pass = staff_pass
        self.resume_token = resume_token
        # who we are at this server (client.identity keeps it between launches); the server's
        # Welcome gives a token on the first visit and the same one after
        self.visitor_token = visitor_token
        self.visitor_id: str | None = None
        self.ticket = ticket
        self.state = ClientState.DISCONNECTED
        self.view = WorldView(interpolate) if view else None
        self.predict = predict
        self.interpolation_ticks = interpolation_ticks
        self.max_extrapolation = max_extrapolation
        self.timing = LinkTiming()  # round trips and the server clock offset, from Ping/Pong
        self.welcome: p.Welcome | None = None
        self.expo: Expo | None = None
        self.geometry: HallGeometry | None = None
        self.predictor: Predictor | None = None
        self.session_id: str | None = None
        self.entity: int | None = None
        self.own: p.OwnState | None = None  # the server's latest word on the own avatar
        self.ack = 0
        self.tick: int | None = None
        self.last_snapshot_at: float | None = None  # client time the newest snapshot arrived
        self.seq = 0  # the last tick's input sequence number in this session
        self._applicable_through = 0  # the last seq the server may apply of the inputs sent
        self._seq_at_welcome = 0  # inputs up to this one were sent on an earlier connection
        self.hold_ticks, self.hold_tolerance = hold_ticks, hold_tolerance
        self._held: p.Input | None = None  # the input in force, sent with seq..seq+ticks-1
        self._outbox: list[bytes] = []
        self._sent_inputs: deque[tuple[int, float]] = deque()
        self._pings: set[float] = set()  # client times of Pings awaiting their Pong
        self._opened_at: float | None = None
        # cluster: the Transfer being followed (its token goes in the next Hello), and the
        # other hall processes to try when this one is lost (the last Servers message)
        self.transfer: p.Transfer | None = None
        self.servers: tuple[str, ...] = ()

    # ------------------------------------------------------------------ connection

    @property
    def joined(self) -> bool:
        return self.state is ClientState.JOINED

    def connection_made(self, now: float, opened_at: float | None = None) -> None:
        """The socket is open: say Hello. ``opened_at`` is when connecting began, so the
        connect time covers the TCP and WebSocket handshakes too."""
        if self.state is ClientState.CLOSED:
            raise NotJoined("this client has left; make a new one")
        self.state = ClientState.JOINING
        self._opened_at = now if opened_at is None else opened_at
        transfer = self.transfer.token if self.transfer is not None else None
        resume = None if transfer is not None else self.resume_token  # a transfer is a new session there
        self._send(p.Hello(p.PROTOCOL_VERSION, self.name, self.colour, self.style, resume, self.staff_pass,
                           self.visitor_token, self.ticket, transfer))

    def transfer_failed(self) -> None:
        """The process a Transfer named could not be reached or refused it: the next
        connection (to the process we came from) resumes the avatar kept there."""
        self.transfer = None

    def connection_lost(self) -> None:
        """The socket is gone. The view restarts empty on the next connection; inputs not
        acknowledged are lost (the server drops a detached avatar's queue)."""
        if self.state is not ClientState.CLOSED:
            self.state = ClientState.DISCONNECTED
        if self.view is not None:
            self.view.clear()
        self._outbox.clear()
        self._sent_inputs.clear()
        self._held = None
        self._pings.clear()
        self.last_snapshot_at = None

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._outbox)

    def data_to_send(self) -> list[bytes]:
        """Frames to write, in order; each is one binary WebSocket message."""
        out, self._outbox = self._outbox, []
        return out

    def _send(self, message: p.Message) -> None:
        self._outbox.append(p.encode(message))

    def _require_joined(self) -> None:
        if self.state is not ClientState.JOINED:
            raise NotJoined(f"not joined ({self.state.value})")

    # ------------------------------------------------------------------ commands

    def send_input(self, move_x: float, move_y: float, yaw: float, run: bool, now: float) -> int:
        """Take one tick's input; returns its sequence number. A frame is queued only when
        it differs from the input in force or that one's hold ran out. An input that does
        not move holds for one tick only: a visitor standing still sends nothing more."""
        self._require_joined()
        if self.seq >= MAX_SEQ:  # 6.8 years of walking at 20 Hz
            raise NotJoined("input sequence numbers are exhausted; join afresh")
        self.seq += 1
        held = self._held
        if held is not None and self.seq < held.seq + held.ticks and self._continues(held, move_x, move_y, yaw, run):
            move_x, move_y, yaw, run = held.move_x, held.move_y, held.yaw, held.run
        else:
            move_x, move_y, yaw, run = float(move_x), float(move_y), float(yaw), bool(run)
            ticks = self.hold_ticks if move_x or move_y else 1
            self._held = p.Input(self.seq, move_x, move_y, yaw, run, ticks)
            self._applicable_through = max(self._applicable_through, self.seq + ticks - 1)
            self._send(self._held)
            self._sent_inputs.append((self.seq, now))
        if self.predictor is not None:
            self.predictor.apply(self.seq, move_x, move_y, yaw, run, now)
        return self.seq

    def _continues(self, held: p.Input, move_x: float, move_y: float, yaw: float, run: bool) -> bool:
        tolerance = self.hold_tolerance
        turn = abs(yaw - held.yaw) % math.tau
        return (
            bool(run) == held.run
            and abs(move_x - held.move_x) <= tolerance
            and abs(move_y - held.move_y) <= tolerance
            and min(turn, math.tau - turn) <= tolerance
        )

    @property
    def unacknowledged(self) -> int:
        """Ticks of input sent on this connection that the server has not acknowledged yet.
        Inputs sent before a reconnection do not count: the server forgot those it had not
        applied, so no snapshot will ever acknowledge them."""
        return self.seq - max(self.ack, self._seq_at_welcome)

    @property
    def holding(self) -> bool:
        """An input that moves is in force: stopping takes an input that stands still."""
        held = self._held
        return held is not None and self.seq < held.seq + held.ticks and bool(held.move_x or held.move_y)

    def ping(self, now: float) -> None:
        self._require_joined()
        self._pings.add(now)
        self._send(p.Ping(now))

    def chat(self, channel: int, text: str) -> None:
        self._require_joined()
        self._send(p.Chat(channel, text))

    def direct_message(self, to: str, text: str) -> None:
        """A private line to the person others see as ``to``, wherever they are."""
        self._require_joined()
        self._send(p.DirectMessage(to, text))

    def find_person(self, name: str) -> None:
        """Ask where ``name`` is; the answer comes as ev.PersonLocated."""
        self._require_joined()
        self._send(p.FindPerson(name))

    def report(self, entity: int, reason: str) -> None:
        """Report another visitor to the organisers (it shows in their console)."""
        self._require_joined()
        self._send(p.Report(entity, reason))

    def order(self, booth: str, sku: str, qty: int, key: str) -> None:
        self._require_joined()
        self._send(p.Order(booth, sku, qty, key))

    def order_paid(self, order_id: str) -> None:
        self._require_joined()
        self._send(p.OrderPaid(order_id))

    def cancel_order(self, order_id: str) -> None:
        self._require_joined()
        self._send(p.CancelOrder(order_id))

    def query_stock(self, booth: str) -> None:
        self._require_joined()
        self._send(p.QueryStock(booth))

    def query_inventory(self) -> None:
        self._require_joined()
        self._send(p.QueryInventory())

    # cards and meetings (answers arrive as client.events.PEOPLE_EVENTS)

    def set_card(self, name: str, company: str, country: str, role: str, language: str, timezone: str,
                 email: str | None = None, phone: str | None = None) -> None:
        self._require_joined()
        self._send(p.SetCard(name, company, country, role, language, timezone, email, phone))

    def offer_card(self, entity: int) -> None:
        self._require_joined()
        self._send(p.OfferCard(entity))

    def answer_card(self, exchange_id: str, accept: bool) -> None:
        self._require_joined()
        self._send(p.AnswerCard(exchange_id, accept))

    def list_slots(self, booth: str) -> None:
        self._require_joined()
        self._send(p.ListSlots(booth))

    def publish_slot(self, starts_at: float, minutes: int) -> None:
        """Booth staff: available from ``starts_at`` (UTC seconds) for ``minutes``."""
        self._require_joined()
        self._send(p.PublishSlot(starts_at, minutes))

    def book_slot(self, slot_id: str) -> None:
        self._require_joined()
        self._send(p.BookSlot(slot_id))

    def cancel_booking(self, booking_id: str) -> None:
        self._require_joined()
        self._send(p.CancelBooking(booking_id))

    def reschedule_booking(self, booking_id: str, slot_id: str) -> None:
        self._require_joined()
        self._send(p.RescheduleBooking(booking_id, slot_id))

    def view_product(self, booth: str, sku: str) -> None:
        self._require_joined()
        self._send(p.ViewProduct(booth, sku))
    # B2B deals and collectibles (answers arrive as ev.DealUpdated, ev.CollectiblesReceived)

    def request_quote(self, booth: str, sku: str, qty: int, incoterm: str, destination: str, key: str) -> None:
        self._require_joined()
        self._send(p.RequestQuote(booth, sku, qty, incoterm, destination, key))

    def send_quotation(self, deal_id: str, tiers: tuple[tuple[int, str], ...], currency: str, valid_for: float,
                       lead_days: int, deposit_percent: int) -> None:
        """Booth staff: answer an RFQ of your booth."""
        self._require_joined()
        self._send(p.SendQuotation(deal_id, tiers, currency, valid_for, lead_days, deposit_percent))

    def place_purchase_order(self, deal_id: str, escrow_id: str) -> None:
        """Accept the quotation with the deposit you hold in escrow at the bank."""
        self._require_joined()
        self._send(p.PlacePurchaseOrder(deal_id, escrow_id))

    def confirm_shipment(self, deal_id: str) -> None:
        self._require_joined()
        self._send(p.ConfirmShipment(deal_id))

    def confirm_delivery(self, deal_id: str) -> None:
        self._require_joined()
        self._send(p.ConfirmDelivery(deal_id))

    def cancel_deal(self, deal_id: str) -> None:
        self._require_joined()
        self._send(p.CancelDeal(deal_id))

    def query_deals(self) -> None:
        self._require_joined()
        self._send(p.QueryDeals())

    def query_collectibles(self) -> None:
        self._require_joined()
        self._send(p.QueryCollectibles())

    def link_account(self, proof: str) -> None:
        """Hand the server the bank's proof (for ``visitor_id``) that our account is ours."""
        self._require_joined()
        self._send(p.LinkAccount(proof))

    def bye(self) -> None:
        """Leave for good: the avatar goes at once and the resume token dies."""
        if self.state is ClientState.JOINED:
            self._send(p.Bye())
        self.state = ClientState.CLOSED
        self.resume_token = None

    # ------------------------------------------------------------------ frames in

    def receive(self, data: bytes, now: float) -> list[ev.Event]:
        """Handle one frame from the server; returns what happened."""
        if self.state is ClientState.CLOSED:
            return []  # we left: what is still in flight no longer matters
        if self.view is None and len(data) > 2 and data[1] in _CHEAP_TYPES:
            try:
                return self._cheap(msgpack.unpackb(data, use_list=False), len(data), now)
            except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
                return [ev.ProtocolViolation(f"bad {p.SERVER_MESSAGES[data[1]].__name__}: {exc!r}")]
        try:
            message = p.decode_server(data)
        except p.ProtocolError as exc:
            return [ev.ProtocolViolation(f"{exc.code.value}: {exc.message}")]
        try:
            return self._handle(message, len(data), now)
        except ViewError as exc:
            return [ev.ProtocolViolation(str(exc))]

    def _cheap(self, items: tuple, size: int, now: float) -> list[ev.Event]:
        """The message of every tick, unpacked but not validated, for clients that keep no
        view (bots): validation is most of a message's cost and a bot only counts them."""
        _, tick, server_time, ack, own_items, leaves, enters, deltas = items
        own = p.OwnState(*own_items)
        out: list[ev.Event] = [ev.Left(leaves)] if leaves else []
        if enters:
            out.append(ev.Entered((), len(enters)))
        return out + self._snapshot(tick, server_time, ack, own, deltas, size, now)

    def _handle(self, message: p.Message, size: int, now: float) -> list[ev.Event]:
        match message:
            case p.Snapshot():  # leaves, then enters, then the deltas (protocol 3)
                out: list[ev.Event] = []
                if message.leaves:
                    if self.view is not None:
                        self.view.leave(message.leaves)
                    out.append(ev.Left(message.leaves))
                if message.enters:
                    if self.view is not None:
                        self.view.enter(message.enters)
                    out.append(ev.Entered(message.enters, len(message.enters)))
                return out + self._snapshot(message.tick, message.server_time, message.ack, message.own,
                                            message.deltas, size, now)
            case p.Pong():
                if message.client_time not in self._pings:
                    return [ev.ProtocolViolation(f"a Pong for a Ping never sent ({message.client_time})")]
                self._pings.discard(message.client_time)
                sample = self.timing.pong(message.client_time, message.server_time, now)
                return [ev.PongReceived(sample.rtt, sample.offset)]
            case p.Welcome():
                return self._welcome(message, now)
            case p.Refused():
                return self._refused(message)
            case p.ChatLine():
                return [ev.ChatReceived(message)]
            case p.DirectLine():
                return [ev.DirectReceived(message)]
            case p.PersonFound():
                return [ev.PersonLocated(message)]
            case p.OrderStatus():
                return [ev.OrderUpdated(message)]
            case p.Receipt():
                return [ev.ReceiptReceived(message)]
            case p.Stock():
                return [ev.StockReceived(message)]
            case p.Inventory():
                return [ev.InventoryReceived(message)]
            case p.BoothEffect():
                return [ev.BoothEffectSeen(message)]
            case p.AccountLinked():
                return [ev.AccountLinked(message.account_id)]
            case p.Error():
                return [ev.ErrorReceived(message.code, message.message, message.ref)]
            case p.ExpoUpdate():
                return self._expo_update(message)
            case _ if type(message) in ev.PEOPLE_EVENTS:
                return [ev.PEOPLE_EVENTS[type(message)](message)]
            case p.Transfer():
                if self.state is not ClientState.JOINED and self.state is not ClientState.JOINING:
                    return [ev.ProtocolViolation("a Transfer with no connection")]
                self.transfer = message
                return [ev.Transferring(message.url, message.hall, self.state is ClientState.JOINING)]
            case p.Servers():
                self.servers = message.urls
                return []
            case p.Closing():
                if message.code in FINAL_CLOSINGS:
                    self.resume_token = None
                if message.code == p.ErrorCode.REPLACED.value:  # the session lives on elsewhere
                    self.state = ClientState.CLOSED
                return [ev.Closed(message.code, message.message, self.resume_token is not None)]
        return [ev.ProtocolViolation(f"unexpected {type(message).__name__}")]

    def _welcome(self, welcome: p.Welcome, now: float) -> list[ev.Event]:
        if self.state is not ClientState.JOINING:
            return [ev.ProtocolViolation("a Welcome without a Hello")]
        resumed = welcome.session_id == self.session_id
        transferred, self.transfer = self.transfer is not None, None
        try:
            expo = _expo_of(welcome.manifest)
        except ValueError as exc:
            return [ev.ProtocolViolation(f"Welcome.manifest: {exc}")]
        if self.predict and (self.geometry is None or self.expo is not expo):
            self.geometry = HallGeometry.from_expo(expo)
        self.state = ClientState.JOINED
        self.welcome, self.expo = welcome, expo
        self.session_id, self.entity = welcome.session_id, welcome.entity
        self.resume_token = welcome.resume_token
        self.visitor_token, self.visitor_id = welcome.visitor_token, welcome.visitor_id
        self.own = welcome.own
        if resumed:  # the server applied at most the sent holds: continue after their end
            self.seq = max(self.seq, self._applicable_through)
        else:  # a new session: its inputs count from 1, and nothing of it is acknowledged
            self.ack = self.seq = self._applicable_through = 0
        self._seq_at_welcome = self.seq
        self.timing.rough(welcome.server_time, now)
        if self.predict:
            assert self.geometry is not None, "set with the expo when predicting"
            self.predictor = Predictor(self.geometry, 1.0 / welcome.tick_rate, 0, 0.0, 0.0, 0.0)
            self.predictor.reset(welcome.own, self._spawn_if_there(welcome.own))
        connect_time = now - self._opened_at if self._opened_at is not None else None
        return [ev.Joined(welcome, expo, resumed, connect_time, transferred)]

    def _expo_update(self, update: p.ExpoUpdate) -> list[ev.Event]:
        """The world files changed while we are here: take the new expo, walls included,
        so the prediction walks into the same walls the server now has."""
        try:
            expo = _expo_of(update.manifest)
        except ValueError as exc:
            return [ev.ProtocolViolation(f"ExpoUpdate.manifest: {exc}")]
        previous, self.expo = self.expo, expo
        if self.predict:
            self.geometry = HallGeometry.from_expo(expo)
            if self.predictor is not None:
                self.predictor.geometry = self.geometry
        return [ev.ExpoChanged(expo, previous)]

    def _spawn_if_there(self, own: p.OwnState) -> tuple[float, float] | None:
        """A new avatar stands exactly on its hall's spawn point: use those floats, so the
        prediction starts bit-for-bit where the server's avatar does."""
        halls = self.expo.halls if self.expo else ()
        if own.hall < len(halls):
            spawn = halls[own.hall].spawn
            if (p.quantise_position(spawn.x), p.quantise_position(spawn.y)) == (own.state.x, own.state.y):
                return (spawn.x, spawn.y)
        return None

    def _refused(self, refused: p.Refused) -> list[ev.Event]:
        if self.transfer is not None:  # the other process would not take us: back where we were
            self.transfer = None
            return [ev.Refused(refused.code, refused.message)]
        if refused.code == p.ErrorCode.RESUME_FAILED.value:
            self.resume_token = None  # the avatar is gone: the next connection joins afresh
            self.session_id = None
        elif refused.code in FATAL_REFUSALS:
            self.state = ClientState.CLOSED
        return [ev.Refused(refused.code, refused.message)]

    def _snapshot(self, tick: int, server_time: float, ack: int, own: p.OwnState, deltas, size: int,
                  now: float) -> list[ev.Event]:
        if self.state is not ClientState.JOINED:
            return [ev.ProtocolViolation("a Snapshot before Welcome")]
        out: list[ev.Event] = []
        changed = self.view.apply(server_time, deltas) if self.view is not None else len(deltas) // 5
        ack_latency = None
        if ack != self.ack:
            sent = self._sent_inputs
            while sent and sent[0][0] < ack:
                sent.popleft()
            if sent and sent[0][0] == ack:
                ack_latency = now - sent.popleft()[1]
            self.ack = ack
            # The server ran a held input for ticks this client skipped (its timer was late):
            # they happened, so the next input follows them.
            self.seq = max(self.seq, ack)
        if self.predictor is not None:
            correction = self.predictor.reconcile(ack, own)
            if correction is not None:
                out.append(ev.PredictionCorrected(correction.ack, correction.error, correction.hall_changed))
        self.own, self.tick, self.last_snapshot_at = own, tick, now
        server_now = self.timing.server_time(now)
        delivery = server_now - server_time if server_now is not None else None
        out.insert(0, ev.SnapshotReceived(tick, server_time, now, ack, own.hall, changed, size, delivery, ack_latency))
        return out

    # ------------------------------------------------------------------ drawing

    def render_time(self, now: float) -> float | None:
        """The server time to draw the others at: a couple of ticks in the past, so two
        real states are (nearly) always there to interpolate between."""
        if self.welcome is None:
            return None
        server_now = self.timing.server_time(now)
        if server_now is None:
            return None
        return server_now - self.interpolation_ticks / self.welcome.tick_rate

    def own_pose(self) -> Pose | None:
        if self.predictor is not None:
            pr = self.predictor
            return Pose(pr.x, pr.y, pr.yaw, int(pr.motion))
        if self.own is None:
            return None
        s = self.own.state
        return Pose(s.x / POSITION_SCALE, s.y / POSITION_SCALE, p.dequantise_yaw(s.yaw), s.motion)

    def scene(self, now: float) -> Scene | None:
        """What to draw now; None before the first Welcome."""
        render_time = self.render_time(now)
        own = self.own_pose()
        if render_time is None or own is None or self.own is None:
            return None
        others = tuple(self.view.poses(render_time, self.max_extrapolation)) if self.view is not None else ()
        hall = self.predictor.hall if self.predictor is not None else self.own.hall
        return Scene(hall, own, others, render_time)
