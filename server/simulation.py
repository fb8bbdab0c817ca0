"""The authoritative simulation of the halls, sans I/O.

Frames come in through ``on_frame``; outbound frames go into each peer's outbox, which the
I/O shell (server.app) flushes to the socket. ``tick`` advances the world one fixed step.
Nothing here awaits or touches a socket, so the whole server logic is tested with plain
function calls and a ManualClock.
"""

from __future__ import annotations

import logging
import math
import secrets
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import protocol as p
from protocol.limits import BOOTH_CHANNEL_MARGIN, CHAT_PROXIMITY_RADIUS
from world.manifest import to_manifest
from world.model import Expo
from world.motion import PORTAL_COOLDOWN, HallGeometry, advance, step

from .analytics.recorder import ActivityRecorder
from .avatars import AvatarTable
from .clock import Clock
from .commerce_port import COMMERCE_REQUESTS, CommerceDesk
from .config import ServerConfig
from .direct import DirectMessages
from .identity import TICKET_VISITOR_PREFIX, VisitorPasses, tagged
from .inputs import INPUT_CREDIT_CAP, INPUT_TICK_COST, HeldInput, InputQueues
from .interest import InterestManager
from .link import LinkState, check_transition
from .metrics import ServerMetrics
from .moderation import Moderation
from .people.desk import PeopleDesk
from .ratelimit import TokenBucket
from .request_limits import RATES, RequestLimits
from .sendstate import SendState, TickFrames
from .snapshots import FrameEncoder, SentTable
from .staff import booth_of_pass

log = logging.getLogger("expo.server")

# Simulation.on_frame queues a joined client's Input without asking its RequestLimits: the
# input rules bound Inputs (server.request_limits.RATES has no rate for them)
_INPUTS_UNLIMITED = RATES[p.Input.TYPE] is None
assert _INPUTS_UNLIMITED, "an Input rate in RATES needs Simulation.on_frame to ask RequestLimits.allow"

SALE_EFFECT_RADIUS = 25.0  # metres around a booth where others see a sale's effect


class Peer:
    """One connection as the simulation sees it. The shell subclasses it to say how much
    is queued on the socket; the simulation fills ``outbox`` and moves ``state`` (see
    server.link: every transition is checked against its table)."""

    def __init__(self) -> None:
        # messages to send, in order: payloads (bytes) to be framed, and each tick's Snapshot
        # framed already by the snapshot kernel (a memoryview of its frame; see frame_payload)
        self.outbox: list[bytes | memoryview] = []
        self.state = LinkState.JOINING
        self.close_request: tuple[p.ErrorCode | None, str] | None = None  # why, once CLOSING; None code: normal
        self.session: Session | None = None
        self.opened_at = 0.0
        self.limits: FrameLimits | None = None  # set by Simulation.open_peer, before any frame
        # a cluster gate holds this connection's Hello while it finds a seat: the Hello came,
        # so the hello deadline does not apply (the gate refuses by its own, with the reason)
        self.hello_held = False
        self.limit_warned_at = -math.inf
        self.slot = -1  # the session's slot while joined
        self.written: set[Peer] | None = None  # where it says its outbox was written (Simulation.written)
        self.sendstate: SendState | None = None  # the rows it may report in while joined (attached)

    def backlog(self) -> int:
        """Bytes written but not yet taken by the network."""
        return 0

    def stalled(self, timeout: float) -> bool:
        """Whether bytes wait and the client has taken none of them for ``timeout`` s."""
        return False

    def send(self, message: p.Message) -> None:
        self.queue(p.encode(message))

    def queue(self, frame: bytes | memoryview) -> None:
        """Append an encoded message (or a whole frame, as a memoryview) to the outbox."""
        self.outbox.append(frame)
        if self.written is not None:
            self.written.add(self)

    def attached(self, state: SendState, slot: int) -> None:
        """Joined on ``slot``: a peer that keeps ``state``'s row of it (server.sendstate)
        says so there; this one does not, so the per-session rules see it."""
        self.sendstate, self.slot = state, slot

    def released(self, state: SendState, slot: int) -> None:
        """``state`` is about to clear this peer's row ``slot`` (it left it)."""

    def transition(self, to: LinkState) -> None:
        check_transition(self.state, to)
        left = self.state is LinkState.JOINED
        self.state = to
        if to is LinkState.CLOSING and self.written is not None:
            self.written.add(self)  # the shell closes it after its last frames
        if left and self.sendstate is not None:
            self.sendstate.detach(self.slot, self)
            self.sendstate, self.slot = None, -1

    @property
    def closing(self) -> bool:
        return self.state is LinkState.CLOSING or self.state is LinkState.CLOSED

    def close(self, code: p.ErrorCode, message: str) -> None:
        """Tell the client why (``Closing``), then close: the shell closes as
        server.link's table says for ``code``."""
        if not self.closing:
            self.send(p.Closing(code.value, message))
            self.begin_close(code, message)

    def begin_close(self, code: p.ErrorCode | None, message: str) -> None:
        """Close after the frames queued so far, without a Closing frame of its own."""
        self.close_request = (code, message)
        self.transition(LinkState.CLOSING)


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """A connection's frame rates: beyond ``frames`` frames are dropped, beyond ``flood`` the
    connection closes, as it does after a burst of ``bad`` frames."""

    frames: TokenBucket
    flood: TokenBucket
    bad: TokenBucket


@dataclass(eq=False)
class Session:
    id: str
    resume_token: str
    slot: int
    entity: int
    name: str  # as others see it: the chosen name, with a tag if a namesake was here first
    chosen_name: str
    visitor_id: str  # who the visitor is, across sessions and restarts: what everything keys on
    visitor_token: str  # proves visitor_id in a later Hello (see server.identity)
    staff_of: str | None
    peer: Peer | None
    chat: TokenBucket
    limits: RequestLimits  # per message type (server.request_limits)
    queues: InputQueues  # the simulation's: this session's held inputs, credit and ack are at ``slot``
    last_input_seq: int = -1  # highest seq queued
    detached_at: float | None = None

    @property
    def inputs(self) -> deque[HeldInput]:
        """The held inputs, oldest first: a copy (the queues keep them as arrays)."""
        return self.queues.queue(self.slot)

    @property
    def acked_seq(self) -> int:
        """The highest input seq applied."""
        return int(self.queues.acked[self.slot])

    @acked_seq.setter
    def acked_seq(self, seq: int) -> None:
        self.queues.acked[self.slot] = seq

    def send(self, message: p.Message) -> None:
        """To the visitor's connection; nothing while it is detached (a resume starts afresh)."""
        if self.peer is not None:
            self.peer.send(message)


class Simulation:
    def __init__(
        self,
        expo: Expo,
        config: ServerConfig,
        clock: Clock,
        metrics: ServerMetrics | None = None,
        token: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        passes: VisitorPasses | None = None,
        tickets: frozenset[str] | None = None,
    ) -> None:
        """``passes`` proves visitor ids (default: a secret of this process only, so
        visitors are forgotten at restart); ``tickets``, when given, are the codes that
        admit a visitor (admission by ticket)."""
        self.config = config
        self.clock = clock
        self.metrics = metrics or ServerMetrics()
        self._token = token
        self.passes = passes or VisitorPasses(secrets.token_bytes(32))
        self.tickets = tickets
        self._use_expo(expo)
        self.avatars = AvatarTable(config.max_clients)
        self.inputs = InputQueues(config.max_clients)
        self.interest = InterestManager(config.max_clients, config.view_radius, max_visible=config.max_visible,
                                        every=config.interest_every)
        self.sent = SentTable(config.max_clients)
        self.frames = FrameEncoder(config.max_clients)
        self.sendstate = SendState(config.max_clients, clock.monotonic)  # the shell's peers report here
        self.stuck_since = np.full(config.max_clients, np.nan)  # by slot: since when no snapshot could go
        self.sessions: dict[str, Session] = {}
        self.by_token: dict[str, Session] = {}
        self.by_slot: dict[int, Session] = {}
        self.by_visitor: dict[str, Session] = {}
        self.peers: set[Peer] = set()
        # peers whose outbox was written or that began to close since the shell last took
        # them (take_written): the shell flushes those, not every connection each tick
        self.written: set[Peer] = set()
        # the few the expiry rules look at, not a pass over every peer and session a tick
        self._joining: set[Peer] = set()  # opened, perhaps not joining any more (looked at and dropped)
        self._detached: set[Session] = set()  # whose client went, waiting for a resume
        self.tick_count = 0
        self.commerce: CommerceDesk | None = None  # set when a bank is configured
        self.activity = ActivityRecorder(expo, config.max_clients, clock.wall)  # booth analytics, drained by the shell
        self.people: PeopleDesk | None = None  # cards and meetings (server.people.service), set by the shell
        self.deals: PeopleDesk | None = None  # B2B deals (server.deals.service, the same kind of desk), with a bank
        self.collectibles: PeopleDesk | None = None  # certificates (server.collectibles), with a bank
        self.moderation: Moderation | None = None  # mutes, bans and reports (server.admin writes them)
        self.chat_relay: Callable[[str, p.ChatLine], None] | None = None  # cluster: booth and hall lines to other instances
        # cluster: avatars that walked into a portal go through here; it returns which hop here
        # (the rest are handed to another process: server.cluster.gate) and where a
        # transferred visitor arrives (peer -> hall index, x, y, yaw), read by its Hello
        self.portal_gate: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
        self.arrivals: dict[Peer, tuple[int, float, float, float]] = {}
        self.direct = DirectMessages(self)  # direct messages and find a person (server.direct)

    def _use_expo(self, expo: Expo) -> None:
        self.expo = expo
        self.geometry = HallGeometry.from_expo(expo)
        self.hall_index = {hall.id: i for i, hall in enumerate(expo.halls)}
        self.manifest = to_manifest(expo)
        self._booth_areas = self._booth_area_arrays()

    def reload(self, expo: Expo) -> None:
        """Apply changed world files while visitors walk: avatars keep their hall (by id)
        and place, pushed inside the new bounds and out of new walls; an avatar whose hall
        is gone goes to the first hall's spawn. Every client gets the new manifest."""
        av = self.avatars
        old_halls = [hall.id for hall in self.expo.halls]
        self._use_expo(expo)
        self.activity.rezone(expo)
        for slot in np.flatnonzero(av.active).tolist():
            hall = self.hall_index.get(old_halls[av.hall[slot]])
            if hall is None:
                av.hall[slot], av.pos[slot] = 0, (expo.halls[0].spawn.x, expo.halls[0].spawn.y)
            else:
                av.hall[slot] = hall
        live = np.flatnonzero(av.active)
        av.pos[live] = step(self.geometry, av.hall[live], av.pos[live], np.zeros((len(live), 2)), np.zeros(len(live), bool), 0.0)
        update = p.encode(p.ExpoUpdate(self.manifest))
        for session in self.sessions.values():
            if session.peer is not None:
                session.peer.queue(update)
        log.info("world reloaded", extra={"expo": expo.name, "halls": len(expo.halls), "booths": len(expo.booths)})

    # ------------------------------------------------------------------ connections

    def open_peer(self, peer: Peer) -> None:
        now = self.clock.monotonic()
        cfg = self.config
        peer.opened_at = now
        peer.limits = FrameLimits(TokenBucket(cfg.frame_rate, cfg.frame_burst, self.clock),
                                  TokenBucket(cfg.flood_rate, cfg.flood_burst, self.clock),
                                  TokenBucket(1.0, 10.0, self.clock))
        self.peers.add(peer)
        self._joining.add(peer)
        peer.written = self.written

    def on_disconnect(self, peer: Peer) -> None:
        """The socket is gone. A joined avatar waits ``resume_grace`` for its client."""
        self.peers.discard(peer)
        self._joining.discard(peer)
        if peer.state is not LinkState.CLOSED:
            peer.transition(LinkState.CLOSED)
        session = peer.session
        peer.session = None
        if session is None or session.peer is not peer:
            return
        session.peer = None
        session.detached_at = self.clock.monotonic()
        self._detached.add(session)
        self.inputs.clear(session.slot)
        self.sent.forget_observer(session.slot)
        if peer.close_request is not None and peer.close_request[0] in (p.ErrorCode.FLOOD,):
            self._remove_session(session, "flood")

    def on_frame(self, peer: Peer, data: Any) -> None:
        """Handle one inbound frame. Never raises for anything the client sent."""
        if peer.closing:
            return
        limits = peer.limits
        assert limits is not None, "a peer is opened (open_peer) before its frames"
        now = self.clock.monotonic()
        if not limits.flood.take_at(now):
            self.metrics.rejected.labels("flood").inc()
            peer.close(p.ErrorCode.FLOOD, "too many frames: slow down")
            return
        if not limits.frames.take_at(now):
            self.metrics.rejected.labels("rate_limited").inc()
            if now - peer.limit_warned_at >= 1.0:
                peer.limit_warned_at = now
                peer.send(p.Error(p.ErrorCode.RATE_LIMITED.value, "too many frames; some were dropped", 0))
            return
        try:
            message = p.decode_client(data)
        except p.ProtocolError as exc:
            if exc.code is p.ErrorCode.VERSION_MISMATCH and peer.session is None:
                self._refuse(peer, exc.code, exc.message)
                return
            self._reject(peer, exc, p.peek_type(bytes(data)) if isinstance(data, (bytes, bytearray)) else 0)
            return
        session = peer.session
        try:
            if type(message) is p.Input and session is not None:  # most frames: _dispatch's case, without its match
                # (and RequestLimits.allow: see _INPUTS_UNLIMITED)
                self._queue_input(session, message)
            else:
                self._dispatch(peer, message)
        except p.ProtocolError as exc:
            self._reject(peer, exc, message.TYPE)

    def _reject(self, peer: Peer, exc: p.ProtocolError, ref: int) -> None:
        self.metrics.rejected.labels(exc.code.value).inc()
        peer.send(p.Error(exc.code.value, exc.message[:512], ref))
        assert peer.limits is not None, "rejecting a frame of an opened peer"
        if not peer.limits.bad.take():
            peer.close(p.ErrorCode.FLOOD, "too many bad frames")

    def _dispatch(self, peer: Peer, message: p.Message) -> None:
        session = peer.session
        if isinstance(message, p.Hello):
            if session is not None:
                raise p.ProtocolError(p.ErrorCode.ALREADY_JOINED, "this connection has joined already")
            self._hello(peer, message)
            return
        if session is None:
            raise p.ProtocolError(p.ErrorCode.NOT_JOINED, "send hello first")
        if not session.limits.allow(message.TYPE):
            raise p.ProtocolError(p.ErrorCode.RATE_LIMITED,
                                  f"too many {type(message).__name__} messages; wait a moment")
        match message:
            case p.Input():
                self._queue_input(session, message)
            case p.Chat():
                self._chat(session, message)
            case p.DirectMessage():
                self._check_chat(session)
                self.direct.send(session, message)
            case p.FindPerson():
                self.direct.find(session, message)
            case p.Ping():
                peer.send(p.Pong(message.client_time, self.clock.monotonic()))
            case p.Bye():
                self._remove_session(session, "bye")
                peer.session = None
                peer.transition(LinkState.DETACHED)
                peer.begin_close(None, "goodbye")  # a normal close, no Closing frame
            case p.QueryStock() | p.Order() | p.OrderPaid() | p.CancelOrder() | p.QueryInventory():
                self._commerce(session, message)
            case p.LinkAccount():
                if self.commerce is None:
                    raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "this server has no bank to link")
                self.commerce.link_account(session.visitor_id, message.proof)
            case p.ViewProduct():
                self._view_product(session, message)
            case p.Report():
                self._report(session, message)
            case _ if isinstance(message, p.PEOPLE_CLIENT_MESSAGES):
                if self.people is None:
                    raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "cards and meetings are not available on this server")
                self.people.handle(session, message)
            case _ if isinstance(message, p.DEALS_CLIENT_MESSAGES):
                if self.deals is None:
                    raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "deals need the bank, which this server has not")
                self.deals.handle(session, message)
            case p.QueryCollectibles():
                if self.collectibles is None:
                    raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "collectibles need the bank, which this server has not")
                self.collectibles.handle(session, message)

    # ------------------------------------------------------------------ joining

    def _hello(self, peer: Peer, hello: p.Hello) -> None:
        if hello.version != p.PROTOCOL_VERSION:
            self._refuse(peer, p.ErrorCode.VERSION_MISMATCH,
                         f"server speaks protocol {p.PROTOCOL_VERSION}, client sent {hello.version}")
            return
        if hello.resume_token is not None:
            session = self.by_token.get(hello.resume_token)
            if session is None:
                self._refuse(peer, p.ErrorCode.RESUME_FAILED, "unknown or expired resume token: join afresh")
                return
            self._resume(peer, session)
            return
        name = unicodedata.normalize("NFC", hello.name)
        if not any(ch.isalnum() for ch in name):
            self._refuse(peer, p.ErrorCode.NAME_INVALID, "a name needs at least one letter or digit")
            return
        staff_of = booth_of_pass(self.config.staff_secret, hello.staff_pass) if hello.staff_pass else None
        if hello.staff_pass and (staff_of is None or self.expo.booth(staff_of) is None):
            self._refuse(peer, p.ErrorCode.NOT_ALLOWED, "that staff pass is not valid")
            return
        visitor = self._visitor_of(hello)
        if visitor is None:
            self._refuse(peer, p.ErrorCode.TICKET_INVALID, "this expo admits by ticket: that ticket is not valid")
            return
        if self.moderation is not None and (ban := self.moderation.banned(visitor)) is not None:  # the person, whatever the name
            until = "until lifted" if ban.until is None else f"for {max(1, round((ban.until - ban.since) / 60))} min"
            self._refuse(peer, p.ErrorCode.BANNED, f"you are banned from this expo {until}: {ban.reason}")
            return
        earlier = self.by_visitor.get(visitor)
        if earlier is not None:  # the same visitor again: a relaunch, or a second window
            if earlier.chosen_name == name and earlier.staff_of == staff_of:
                earlier.acked_seq = 0  # a new client counts its inputs from the start
                self._resume(peer, earlier, "relaunch")
                return
            self._remove_session(earlier, "replaced")
            if earlier.peer is not None:
                earlier.peer.session = None
                earlier.peer.transition(LinkState.DETACHED)
                earlier.peer.close(p.ErrorCode.REPLACED, "you joined again from elsewhere")
        if self.avatars.full and not self._release_a_detached_seat():
            self._refuse(peer, p.ErrorCode.SERVER_FULL, f"the expo is full ({self.config.max_clients} visitors)")
            return
        folded = name.casefold()
        namesake = any(other.chosen_name.casefold() == folded for other in self.sessions.values())
        shown = tagged(name, visitor) if namesake else name
        arrival = self.arrivals.pop(peer, None)  # cluster: through a portal of another process
        hall, x, y, yaw = arrival if arrival is not None else self._appearance(staff_of)
        slot = self.avatars.add(shown, hello.colour, hello.style, staff_of, hall, x, y, yaw)
        if hall:  # arrived through a portal elsewhere: not straight back through the one at hand
            self.avatars.portal_ready_at[slot] = self.clock.monotonic() + PORTAL_COOLDOWN
        session = Session(
            id=self._token(),
            resume_token=self._token(),
            slot=slot,
            entity=int(self.avatars.entity[slot]),
            name=shown,
            chosen_name=name,
            visitor_id=visitor,
            visitor_token=self.passes.token(visitor),
            staff_of=staff_of,
            peer=None,
            chat=TokenBucket(self.config.chat_rate, self.config.chat_burst, self.clock),
            limits=RequestLimits(self.clock),
            queues=self.inputs,
        )
        self.inputs.reset(slot, self.tick_count)
        self.sessions[session.id] = session
        self.by_token[session.resume_token] = session
        self.by_slot[slot] = session
        self.by_visitor[session.visitor_id] = session
        self.activity.join(slot, session.visitor_id, staff=staff_of is not None)
        self.metrics.joins.inc()
        log.info("join", extra={"session": session.id, "visitor": visitor, "display_name": session.name, "entity": session.entity})
        self._attach(peer, session)

    def _visitor_of(self, hello: p.Hello) -> str | None:
        """The visitor id a Hello proves. A token that does not verify (another server's,
        or from before the secret changed) is no identity: that client is a new visitor and
        its Welcome carries a token that works. With tickets, None unless admitted."""
        proved = self.passes.verify(hello.visitor_token) if hello.visitor_token else None
        if self.tickets is None:
            return proved or self.passes.new_visitor()
        if hello.ticket is not None and hello.ticket in self.tickets:
            return self.passes.ticket_visitor(hello.ticket)
        if proved is not None and proved.startswith(TICKET_VISITOR_PREFIX):
            return proved  # admitted by a ticket before: the token is enough
        return None

    def _appearance(self, staff_of: str | None) -> tuple[int, float, float, float]:
        """Hall, position and yaw of a new avatar: the first hall's spawn, or for booth staff
        their booth's post (they come to work, not to browse)."""
        booth = self.expo.booth(staff_of) if staff_of else None
        if booth is None or booth.hall not in self.hall_index:
            spawn = self.expo.halls[0].spawn
            return 0, spawn.x, spawn.y, 0.0
        post, yaw = booth.staff_post()
        return self.hall_index[booth.hall], post.x, post.y, yaw

    def _release_a_detached_seat(self) -> bool:
        """At the cap, the seat of the visitor who has been away longest goes to a newcomer."""
        detached = [s for s in self.sessions.values() if s.peer is None and s.detached_at is not None]
        if not detached:
            return False
        self._remove_session(min(detached, key=lambda s: s.detached_at or 0.0), "seat_needed")
        return True

    def _resume(self, peer: Peer, session: Session, how: str = "resume") -> None:
        if session.peer is not None:
            old = session.peer
            old.session = None
            old.transition(LinkState.DETACHED)
            old.close(p.ErrorCode.REPLACED, "this session was resumed on another connection")
        self.sent.forget_observer(session.slot)
        session.detached_at = None
        self._detached.discard(session)
        self.inputs.clear(session.slot)
        self.metrics.resumes.inc()
        log.info(how, extra={"session": session.id, "visitor": session.visitor_id})
        self._attach(peer, session)

    def _attach(self, peer: Peer, session: Session) -> None:
        session.peer = peer
        self.stuck_since[session.slot] = np.nan
        session.last_input_seq = session.acked_seq
        peer.session = session
        peer.transition(LinkState.JOINED)
        self.sendstate.attach(session.slot, peer)
        peer.send(
            p.Welcome(
                session_id=session.id,
                entity=session.entity,
                tick_rate=self.config.tick_rate,
                server_time=self.clock.monotonic(),
                resume_token=session.resume_token,
                view_radius=self.config.view_radius,
                own=self._own_state(session.slot, self.avatars.quantised()[session.slot]),
                bank_url=self.config.bank_url,
                manifest=self.manifest,
                visitor_id=session.visitor_id,
                visitor_token=session.visitor_token,
                display_name=session.name,
            )
        )

    def _refuse(self, peer: Peer, code: p.ErrorCode, message: str) -> None:
        self.metrics.rejected.labels(code.value).inc()
        peer.send(p.Refused(code.value, message))
        peer.begin_close(code, message)

    def _remove_session(self, session: Session, why: str) -> None:
        self.sessions.pop(session.id, None)
        self._detached.discard(session)
        self.by_token.pop(session.resume_token, None)
        self.by_slot.pop(session.slot, None)
        if self.by_visitor.get(session.visitor_id) is session:
            del self.by_visitor[session.visitor_id]
        self.sent.forget_observer(session.slot)
        self.sendstate.detach(session.slot)
        self.interest.forget(session.slot)
        self.activity.leave(session.slot)
        self.inputs.clear(session.slot)
        self.avatars.remove(session.slot)
        self.metrics.leaves.labels(why).inc()
        log.info("leave", extra={"session": session.id, "visitor": session.visitor_id, "why": why})

    # ------------------------------------------------------------------ inputs and chat

    def _queue_input(self, session: Session, message: p.Input) -> None:
        if message.seq <= session.last_input_seq:
            raise p.ProtocolError(p.ErrorCode.BAD_FIELD, f"Input.seq {message.seq} is not after {session.last_input_seq}")
        session.last_input_seq = message.seq
        self.inputs.add(session.slot, message, session.acked_seq)

    def _check_chat(self, session: Session) -> None:
        """Chat and direct messages: the same rate and the organisers' mutes."""
        if not session.chat.take():
            raise p.ProtocolError(p.ErrorCode.RATE_LIMITED, "you are chatting too fast; wait a moment")
        if self.moderation is not None and (mute := self.moderation.muted(session.visitor_id)) is not None:
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, f"the organisers muted you: {mute.reason}")

    def _chat(self, session: Session, message: p.Chat) -> None:
        self._check_chat(session)
        av = self.avatars
        slot = session.slot
        same_hall = av.active & (av.hall == av.hall[slot])
        booth_id = None
        if message.channel == p.Channel.PROXIMITY:
            d2 = np.sum((av.pos - av.pos[slot]) ** 2, axis=1)
            listeners = same_hall & (d2 <= CHAT_PROXIMITY_RADIUS**2)
        elif message.channel == p.Channel.BOOTH:
            at = self._booths_at(av.pos, av.hall)
            if at[slot] < 0:
                raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "walk into a booth to use its channel")
            booth_id = self.expo.booths[at[slot]].id
            listeners = av.active & (at == at[slot])
        else:
            if session.staff_of is None:
                raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "only booth staff may make announcements")
            booth_id = session.staff_of
            listeners = same_hall
        chat_line = p.ChatLine(message.channel, session.entity, session.name, message.text, booth_id, self.clock.monotonic())
        self._tell(listeners, p.encode(chat_line))
        self.metrics.chat_lines.labels(p.Channel(message.channel).name.lower()).inc()
        if self.chat_relay is not None and message.channel != p.Channel.PROXIMITY:
            self.chat_relay(self.expo.halls[int(av.hall[slot])].id, chat_line)

    def _tell(self, listeners: np.ndarray, data: bytes) -> None:
        for listener in np.flatnonzero(listeners):
            other = self.by_slot.get(int(listener))
            if other is not None and other.peer is not None:
                other.peer.queue(data)

    def relayed_chat(self, hall_id: str, line: p.ChatLine) -> None:
        """A booth or hall line said in another instance of the hall (the cluster's relay):
        the same listeners here as if it were said here; entity 0, as the speaker is not in
        this instance."""
        hall = self.hall_index.get(hall_id)
        if hall is None:
            return
        av = self.avatars
        if line.channel == p.Channel.BOOTH:
            booth = next((i for i, b in enumerate(self.expo.booths) if b.id == line.booth), None)
            if booth is None:
                return
            listeners = av.active & (self._booths_at(av.pos, av.hall) == booth)
        else:
            listeners = av.active & (av.hall == hall)
        self._tell(listeners, p.encode(p.ChatLine(line.channel, 0, line.name, line.text, line.booth, self.clock.monotonic())))

    def _report(self, session: Session, message: p.Report) -> None:
        slots = np.flatnonzero(self.avatars.entity == message.entity)
        if len(slots) == 0 or self.avatars.info[int(slots[0])] is None:
            raise p.ProtocolError(p.ErrorCode.BAD_FIELD, f"Report.entity: no avatar {message.entity} is here")
        if self.moderation is None:
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "this server takes no reports")
        reported = self.by_slot.get(int(slots[0]))
        if reported is None:
            raise p.ProtocolError(p.ErrorCode.BAD_FIELD, f"Report.entity: avatar {message.entity} is no visitor here")
        hall = self.expo.halls[int(self.avatars.hall[session.slot])].id
        self.moderation.file_report(session.visitor_id, session.name, reported.visitor_id, reported.name, message.reason, hall)

    def hand_over(self, session: Session) -> None:
        """Cluster: the visitor went on at another process, which has its seat now: the
        avatar goes at once and the old connection, if still open, closes normally."""
        peer = session.peer
        self._remove_session(session, "transferred")
        if peer is not None:
            peer.session = None
            if not peer.closing:
                peer.transition(LinkState.DETACHED)
                peer.begin_close(None, "transferred")

    def kick(self, session: Session, reason: str) -> None:
        """Remove a visitor now (the organisers' decision): the client is told why and closed."""
        if session.peer is not None:
            session.peer.close(p.ErrorCode.KICKED, reason)
            session.peer.session = None
        self._remove_session(session, "kicked")

    def _booth_area_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        areas = np.array(
            [[b.footprint.min_x - BOOTH_CHANNEL_MARGIN, b.footprint.min_y - BOOTH_CHANNEL_MARGIN,
              b.footprint.max_x + BOOTH_CHANNEL_MARGIN, b.footprint.max_y + BOOTH_CHANNEL_MARGIN]
             for b in self.expo.booths],
            dtype=np.float64,
        ).reshape(-1, 4)
        halls = np.array([self.hall_index[b.hall] for b in self.expo.booths], dtype=np.int16)
        return areas, halls

    def _booths_at(self, pos: np.ndarray, halls: np.ndarray) -> np.ndarray:
        """The index of the booth each position stands at (its footprint plus a margin), or -1."""
        areas, booth_halls = self._booth_areas
        if len(areas) == 0:
            return np.full(len(pos), -1)
        inside = (
            (halls[:, None] == booth_halls[None, :])
            & (pos[:, 0:1] >= areas[None, :, 0]) & (pos[:, 0:1] <= areas[None, :, 2])
            & (pos[:, 1:2] >= areas[None, :, 1]) & (pos[:, 1:2] <= areas[None, :, 3])
        )
        return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)

    def booths_of(self, slots: np.ndarray) -> np.ndarray:
        """The index of the booth each of these avatars stands at, or -1 (for the console)."""
        return self._booths_at(self.avatars.pos[slots], self.avatars.hall[slots])

    def booth_at(self, slot: int) -> str | None:
        index = int(self._booths_at(self.avatars.pos[slot : slot + 1], self.avatars.hall[slot : slot + 1])[0])
        return None if index < 0 else self.expo.booths[index].id

    def _commerce(self, session: Session, message: p.Message) -> None:
        """Check what the simulation knows (the booth, the product) and hand the rest to
        commerce, which answers through ``deliver``."""
        assert isinstance(message, COMMERCE_REQUESTS)
        booth = None
        if isinstance(message, (p.QueryStock, p.Order)):
            booth = self.expo.booth(message.booth)
            if booth is None:
                raise p.ProtocolError(p.ErrorCode.UNKNOWN_BOOTH, f"no booth {message.booth!r}")
            if isinstance(message, p.Order) and booth.product(message.sku) is None:
                raise p.ProtocolError(p.ErrorCode.UNKNOWN_PRODUCT, f"{booth.exhibitor} sells no {message.sku!r}")
            if isinstance(message, p.QueryStock):  # how a client opens a booth's catalogue
                self.activity.catalogue_opened(session.visitor_id, booth.id)
        if self.commerce is not None:
            self.commerce.submit(session.visitor_id, message)
        elif isinstance(message, p.QueryStock):  # no bank: the world files' stock, for looking
            assert booth is not None, "checked above"
            session.send(p.Stock(booth.id, tuple((pr.sku, pr.stock) for pr in booth.catalogue)))
        else:
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "purchases are not available: this server has no bank")

    def _view_product(self, session: Session, message: p.ViewProduct) -> None:
        booth = self.expo.booth(message.booth)
        if booth is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_BOOTH, f"no booth {message.booth!r}")
        if booth.product(message.sku) is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_PRODUCT, f"{booth.exhibitor} sells no {message.sku!r}")
        self.activity.product_viewed(session.visitor_id, booth.id, message.sku)

    # ------------------------------------------------------------------ what commerce may do (CommerceOutlet)

    def deliver(self, visitor: str, message: p.Message) -> None:
        session = self.by_visitor.get(visitor)
        if session is not None and session.peer is not None:
            session.peer.send(message)

    def serves(self, visitor: str) -> bool:
        return visitor in self.by_visitor

    # ------------------------------------------------------------------ the tick

    def tick(self) -> None:
        now = self.clock.monotonic()
        self.tick_count += 1
        self._expire(now)
        self._move(now)
        live = np.flatnonzero(self.avatars.active)
        self.activity.observe(live, self.avatars.pos[live], self.avatars.hall[live], self.avatars.motion[live] != 0)
        observers, targets = self.interest.visible_pairs(self.avatars.pos, self.avatars.hall, self.avatars.active)
        self._send_snapshots(now, observers, targets)

    def _expire(self, now: float) -> None:
        cfg = self.config
        for peer in list(self._joining):
            if peer.state is not LinkState.JOINING:
                self._joining.discard(peer)  # joined or closing: no hello deadline any more
            elif not peer.hello_held and now - peer.opened_at > cfg.hello_timeout:
                peer.close(p.ErrorCode.TIMEOUT, f"no hello within {cfg.hello_timeout:g} s")
        # near the cap, an avatar whose client went waits only a short while for it
        crowded = len(self.avatars) >= cfg.near_cap_share * cfg.max_clients
        grace = min(cfg.resume_grace, cfg.near_cap_grace) if crowded else cfg.resume_grace
        for session in list(self._detached):
            if session.peer is None and session.detached_at is not None and now - session.detached_at > grace:
                self._remove_session(session, "timeout")

    def _move(self, now: float) -> None:
        """Apply queued inputs, a tick's step each.

        Each avatar earns 1.1 steps per tick, saved up to 2 (INPUT_CREDIT_*, in tenths).
        A client's newest input, the one in force, takes one step a tick: a held input runs
        in step with the client's ticks. Ticks queued before it are a backlog from a network
        hiccup and drain with the spare credit, 10 % faster than real time, at most two
        ticks of input in any tick (never the whole backlog at once: the avatar would leap);
        a client sending faster than the tick gains at most the 10 % allowance.

        As arrays over every walking slot (server.inputs); Python runs only for the few
        whose front input ran out with a backlog behind it."""
        av = self.avatars
        av.motion[:] = 0
        moving = self.inputs.earn(self.tick_count)  # that may step this round
        for _ in range(INPUT_CREDIT_CAP // INPUT_TICK_COST):
            steps, moving = self.inputs.take(moving)
            if not len(steps.slots):
                break
            av.yaw[steps.slots] = steps.yaw
            self._step(now, steps.slots, steps.move, steps.run)

    def _step(self, now: float, idx: np.ndarray, move: np.ndarray, run: np.ndarray) -> None:
        av = self.avatars
        who, halls, targets = advance(self.geometry, av.hall, av.pos, av.motion, av.portal_ready_at, idx, move, run,
                                      self.config.dt, now)
        if len(who):
            hop = idx[who]
            if self.portal_gate is not None:
                av.portal_ready_at[hop] = now + PORTAL_COOLDOWN
                here = self.portal_gate(hop, halls, targets)
                hop, halls, targets = hop[here], halls[here], targets[here]
            av.hall[hop] = halls
            av.pos[hop] = targets
            av.portal_ready_at[hop] = now + PORTAL_COOLDOWN
            self.metrics.portal_hops.inc(len(hop))

    def _own_state(self, slot: int, q: np.ndarray) -> p.OwnState:
        return p.OwnState(int(self.avatars.hall[slot]), int(q[0]), int(q[1]), int(q[2]), int(q[3]))

    def _send_snapshots(self, now: float, observers: np.ndarray, targets: np.ndarray) -> None:
        """Who gets a snapshot and who is too slow, then every snapshot at once. The direct
        slots (server.sendstate) are judged as arrays, on the kernel's backlog that is all
        they have; only the others and the exceptions run the rules a session at a time.
        The direct senders' frames are left to the shell as one buffer (``TickFrames``),
        the others' appended to their outboxes."""
        cfg = self.config
        av = self.avatars
        state = self.sendstate
        live = av.active
        direct = state.direct & ~state.flying & live
        ok = direct & (state.unsent <= min(cfg.skip_backlog, cfg.hard_backlog))
        ok &= ~state.stalled(cfg.stuck_timeout)
        fast = np.flatnonzero(ok)
        self.stuck_since[fast] = np.nan
        senders: list[Peer] = []
        slots: list[int] = []
        joined, hard, skip = LinkState.JOINED, cfg.hard_backlog, cfg.skip_backlog  # locals: a pass per client
        stuck = self.stuck_since
        for slot in np.flatnonzero(live & ~ok).tolist():
            session = self.by_slot.get(slot)
            if session is None:
                continue
            peer = session.peer
            if peer is None or peer.state is not joined:
                continue
            backlog = peer.backlog()
            if backlog > hard:
                peer.close(p.ErrorCode.TOO_SLOW, "you stopped reading")
                self.metrics.slow_drops.inc()
            elif backlog > skip:
                self.metrics.skipped_snapshots.inc()
                since = stuck[slot]
                if math.isnan(since):
                    stuck[slot] = now
                elif now - since > cfg.stuck_timeout:
                    peer.close(p.ErrorCode.TOO_SLOW, f"no snapshot could be sent for {cfg.stuck_timeout:g} s")
                    self.metrics.slow_drops.inc()
            elif backlog and peer.stalled(cfg.stuck_timeout):
                peer.close(p.ErrorCode.TOO_SLOW, f"nothing sent to you was taken for {cfg.stuck_timeout:g} s")
                self.metrics.slow_drops.inc()
            else:
                stuck[slot] = np.nan
                senders.append(peer)
                slots.append(slot)
        # the direct senders first: their frames are the buffer's first len(fast)
        idx = np.concatenate((fast, np.array(slots, dtype=np.int64)))
        sending = np.zeros(av.capacity, dtype=bool)
        sending[idx] = True
        q = av.quantised()
        diff = self.sent.diff(observers, targets, av.entity, q, sending)
        data, at = self.frames.encode(diff, idx, self.inputs.acked, av.hall, q, av.entity, av.info, self.tick_count, now)
        state.frames = TickFrames(fast, data, at[:len(fast) + 1]) if len(fast) else None
        frames = data.data  # a memoryview: each client's slice already a whole WebSocket frame
        for peer, start, end in zip(senders, at[len(fast):].tolist(), at[len(fast) + 1:].tolist()):
            peer.queue(frames[start:end])

    def order_recorded(self, order: Any, paid: bool) -> None:
        if paid:
            self.activity.order_paid(order)
        else:
            buyer = self.by_visitor.get(order.visitor)
            self.activity.order_placed(order, buyer.name if buyer is not None else order.visitor)

    def announce_sale(self, booth_id: str, visitor: str) -> None:
        """Everyone near the booth sees a sale happen there (the buyer's avatar, if here)."""
        booth = self.expo.booth(booth_id)
        if booth is None:
            return
        buyer = self.by_visitor.get(visitor)
        buyer_entity = buyer.entity if buyer is not None else 0
        radius = SALE_EFFECT_RADIUS
        av = self.avatars
        centre = np.array([booth.footprint.centre.x, booth.footprint.centre.y])
        near = av.active & (av.hall == self.hall_index[booth.hall]) & (np.sum((av.pos - centre) ** 2, axis=1) <= radius**2)
        frame = p.encode(p.BoothEffect(booth_id, "sale", buyer_entity))
        for slot in np.flatnonzero(near).tolist():
            session = self.by_slot.get(slot)
            if session is not None and session.peer is not None:
                session.peer.queue(frame)

    # ------------------------------------------------------------------ shutdown

    def shutdown(self, message: str = "the expo is closing") -> None:
        for peer in list(self.peers):
            peer.close(p.ErrorCode.SHUTDOWN, message)

    def take_written(self) -> list[Peer]:
        """The peers written since the last call (the set stays the one the peers hold)."""
        written = list(self.written)
        self.written.clear()
        return written

    @property
    def connected(self) -> int:
        return sum(1 for s in self.sessions.values() if s.peer is not None)
