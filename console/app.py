"""The web console: a Starlette app under uvicorn on the world server's own event loop.

It reads the simulation through ``server.admin.Admin`` (never over the network), so the
live map is the simulation's state of the moment. Organisers see the halls, the crowd, the
sales and alerts, and moderate; an exhibitor sees and edits its own booth only. Pages are
plain HTML forms (POST, each with the session's CSRF token); console.js only draws the live
dots from the server-sent event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from bank.schemas import MAX_EDITION_SIZE
from client import expo_url
from server.admin import HEATMAP_MINUTES, Admin, WhoError
from server.clock import Clock, SystemClock
from server.deals.machine import Deal, DealRefused, DealState
from server.people.leads import Lead
from world import iso
from world.model import Booth, Expo

from . import booth_form, deal_form
from .auth import ConsoleSession, Credentials, Identity, LoginLimiter, Role, Sessions
from .html import esc, field, field_id_of, form, page, table
from .maps import bars_svg, hall_svg, heatmap_svg

if TYPE_CHECKING:
    from server.app import ExpoServer

log = logging.getLogger("expo.console")

COOKIE = "expo_console"
LOGIN_COOKIE = "expo_console_login"  # the pre-login CSRF token
STATIC = Path(__file__).parent / "static"
LIVE_INTERVAL = 0.25  # seconds between frames of the live map: four a second
MAX_FORM = 64 * 1024


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ClientLink:
    """How a booth directory links into the desktop client: an expo:// link, which a browser
    hands to the client once `expo-client --register-url-handler` has run, and the command
    to paste for those without the handler."""

    server_url: str

    def command(self, booth_id: str) -> str:
        return f"expo-client --server {self.server_url} --booth {booth_id}"

    def url(self, booth_id: str) -> str:
        return expo_url.link(self.server_url, booth_id)


def amount(minor: int, currency: str) -> str:
    """Minor units in the currency's own decimal places, grouped: 250000 KZT is '2,500.00'."""
    places = iso.decimals(currency)
    return f"{minor / 10**places:,.{places}f}" if places else f"{minor:,}"


def _product_name(booth: Booth, sku: str | None) -> str:
    """'Altai mountain honey, 500 g (KZ-HONEY-500)', or the sku of a product since removed."""
    product = booth.product(sku) if sku else None
    return f"{product.name} ({sku})" if product else sku or ""


def money(minor: int, currency: str) -> str:
    return f"{amount(minor, currency)} {currency}"


class Console:
    def __init__(self, admin: Admin, credentials: Credentials, client_link: ClientLink,
                 clock: Clock | None = None, wall_clock: Callable[[], float] | None = None) -> None:
        self.admin = admin
        self.credentials = credentials
        self.clock = clock or SystemClock()
        self.wall = wall_clock or self.clock.wall
        self.sessions = Sessions(self.clock)
        self.limiter = LoginLimiter(self.clock)
        self.link = client_link
        self.stopping = asyncio.Event()
        self.app = Starlette(routes=[
            Route("/", self.home),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.post(self.logout), methods=["POST"]),
            Route("/directory", self.directory),
            Route("/certificates", self.certificate),
            Route("/static/{name}", self.static),
            Route("/organiser", self.get(self.organiser, Role.ORGANISER)),
            Route("/organiser/live", self.get(self.live, Role.ORGANISER)),
            Route("/organiser/moderate", self.post(self.moderate, Role.ORGANISER), methods=["POST"]),
            Route("/organiser/announce", self.post(self.announce, Role.ORGANISER), methods=["POST"]),
            Route("/organiser/reports/{report}", self.post(self.handle_report, Role.ORGANISER), methods=["POST"]),
            Route("/organiser/processes/{process}/dismiss", self.post(self.dismiss_process, Role.ORGANISER),
                  methods=["POST"]),
            Route("/organiser/exhibitors", self.get(self.exhibitors, Role.ORGANISER)),
            Route("/organiser/exhibitors", self.post(self.issue_login, Role.ORGANISER), methods=["POST"]),
            Route("/organiser/exhibitors/revoke", self.post(self.revoke_login, Role.ORGANISER), methods=["POST"]),
            Route("/booth/{booth}", self.get(self.booth_page)),
            Route("/booth/{booth}", self.post(self.booth_save), methods=["POST"]),
            Route("/booth/{booth}/orders.csv", self.get(self.orders_csv)),
            Route("/booth/{booth}/leads.csv", self.get(self.leads_csv)),
            Route("/booth/{booth}/leads", self.post(self.annotate_lead), methods=["POST"]),
            Route("/booth/{booth}/slots", self.post(self.publish_slot), methods=["POST"]),
            Route("/booth/{booth}/editions", self.post(self.open_edition), methods=["POST"]),
            Route("/booth/{booth}/deals/{deal}/quote", self.post(self.quote_deal), methods=["POST"]),
            Route("/booth/{booth}/deals/{deal}/ship", self.post(self.ship_deal), methods=["POST"]),
            Route("/booth/{booth}/deals/{deal}/decline", self.post(self.decline_deal), methods=["POST"]),
        ])

    @property
    def expo_name(self) -> str:
        return self.admin.expo.name

    # ------------------------------------------------------------------ plumbing

    def _session(self, request: Request) -> ConsoleSession | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _html(self, title: str, body: str, session: ConsoleSession | None, status: int = 200, **kw) -> Response:
        return _secure(HTMLResponse(page(title, body, session, expo_name=self.expo_name, **kw), status_code=status))

    def get(self, handler: Callable[..., Awaitable[Response]], role: Role | None = None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            try:
                self._authorise(session, request, role)
                return await handler(request, session)
            except Refusal as refusal:
                return self._html("Not allowed" if refusal.status == 403 else "Not found",
                                  f"<p>{esc(refusal.message)}</p>", session, status=refusal.status)
        return endpoint

    def post(self, handler: Callable[..., Awaitable[Response]], role: Role | None = None) -> Callable[[Request], Awaitable[Response]]:
        """A form handler: a session, then its CSRF token, then the role, then the handler."""
        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return _secure(PlainTextResponse("log in first\n", status_code=401))
            body = await request.body()
            if len(body) > MAX_FORM:
                return _secure(PlainTextResponse("form too large\n", status_code=413))
            data = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            if data.get("csrf") != session.csrf:
                return _secure(PlainTextResponse("the form's CSRF token is missing or stale: reload the page\n", status_code=403))
            try:
                self._authorise(session, request, role)
                return await handler(request, session, data)
            except Refusal as refusal:
                return self._html("Not allowed" if refusal.status == 403 else "Not found",
                                  f"<p>{esc(refusal.message)}</p>", session, status=refusal.status)
        return endpoint

    def _authorise(self, session: ConsoleSession, request: Request, role: Role | None) -> None:
        if role is not None and session.identity.role is not role:
            raise Refusal(403, f"this page is for the {role.value} only")
        booth = request.path_params.get("booth")
        if booth is not None:
            if not session.identity.may_see(booth):
                raise Refusal(403, "you may see only your own booth")
            if self.admin.expo.booth(booth) is None:
                raise Refusal(404, f"no booth {booth!r}")

    # ------------------------------------------------------------------ login

    async def home(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(_landing(session.identity), status_code=303)

    def _login_form(self, csrf: str, error: str | None = None, next_path: str = "") -> str:
        return (
            '<form method="post" action="/login" class="card" aria-label="Log in">'
            f'<input type="hidden" name="next" value="{esc(next_path)}"><input type="hidden" name="csrf" value="{esc(csrf)}">'
            + field("token", "Access token", kind="password", error=error, required=True, autocomplete="current-password",
                    autofocus=True, hint="The organiser's token is in organiser.token beside the server's data; "
                                         "exhibitors get theirs from the organiser.")
            + '<button type="submit">Log in</button></form>'
        )

    def _login_response(self, status: int = 200, error: str | None = None, next_path: str = "") -> Response:
        """The login page with a fresh pre-login CSRF token, in a SameSite=Strict cookie and
        in the form: a login posted from another site has no cookie and is refused, so no
        one can log a browser into their own account (login CSRF)."""
        csrf = secrets.token_urlsafe(24)
        response = self._html("Log in", self._login_form(csrf, error, next_path), None, status=status)
        response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, samesite="strict", path="/login", max_age=3600)
        return response

    async def login_page(self, request: Request) -> Response:
        return self._login_response(next_path=request.query_params.get("next", ""))

    async def login(self, request: Request) -> Response:
        address = request.client.host if request.client else "?"
        body = await request.body()
        data = dict(parse_qsl(body[:MAX_FORM].decode("utf-8", "replace")))
        expected = request.cookies.get(LOGIN_COOKIE)
        if not expected or not hmac.compare_digest(expected, data.get("csrf", "")):
            return self._login_response(403, "The login form was stale or came from elsewhere: log in again here.")
        # No await from here to the verdict: concurrent guesses cannot all pass the same check.
        if not self.limiter.allow(address):
            response = self._login_response(429, "Too many attempts: wait a minute and try again.")
            response.headers["Retry-After"] = "10"
            return response
        identity = self.credentials.check(data.get("token", ""))
        if identity is None:
            self.limiter.failed(address)
            log.warning("console login refused", extra={"address": address})
            return self._login_response(401, "That token is not valid.")
        session = self.sessions.open(identity)
        target = data.get("next", "")
        if not (target.startswith("/") and not target.startswith("//")):  # no open redirect
            target = _landing(identity)
        redirect = RedirectResponse(target, status_code=303)
        redirect.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", path="/", max_age=12 * 3600)
        redirect.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="strict")
        log.info("console login", extra={"role": identity.role.value, "booth": identity.booth})
        return _secure(redirect)

    async def logout(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        self.sessions.close(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return _secure(response)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("console.js", "console.css"):
            return PlainTextResponse("not found\n", status_code=404)
        return _secure(FileResponse(STATIC / name))

    # ------------------------------------------------------------------ organiser

    async def organiser(self, request: Request, session: ConsoleSession, notice: str | None = None,
                        errors: dict[str, str] | None = None, values: dict[str, str] | None = None) -> Response:
        admin, expo = self.admin, self.admin.expo
        errors, values = errors or {}, values or {}
        per_hall = admin.visitors_per_hall()
        per_booth = admin.visitors_per_booth()
        halls = []
        for hall in expo.halls:
            booths = expo.booths_in(hall.id)
            rows = sorted(((per_booth[b.id], b) for b in booths), key=lambda t: (-t[0], t[1].exhibitor))
            booth_rows = "".join(
                f'<tr><td>{esc(b.exhibitor)}</td><td class="num" data-booth-count="{esc(b.id)}">{n}</td></tr>' for n, b in rows)
            heat = await admin.heatmap(hall.id)
            heat_block = (f"<details><summary>Where visitors stood in {esc(hall.name)} in the last {HEATMAP_MINUTES:g} minutes"
                          f"</summary>{heatmap_svg(heat.counts, heat.cell, hall, booths, None)}</details>"
                          if heat is not None else "")
            halls.append(
                f'<section class="hall" aria-labelledby="hall-{esc(hall.id)}"><h2 id="hall-{esc(hall.id)}">{esc(hall.name)}: '
                f'<span data-hall-count="{esc(hall.id)}">{per_hall[hall.id]}</span> visitors</h2>'
                f'<div class="map-wrap">{hall_svg(hall, booths)}</div>'
                '<p class="legend"><span class="key visitor"></span>visitor <span class="key staff"></span>booth staff '
                '<span class="key portal"></span>portal to the other hall · north is up; '
                'hover a booth or a dot for its name</p>'
                f'<details><summary>Visitors per booth in {esc(hall.name)}</summary><div class="scroll"><table>'
                f'<caption>Visitors per booth</caption><thead><tr><th scope="col">Booth</th><th scope="col">Visitors</th></tr></thead>'
                f"<tbody>{booth_rows}</tbody></table></div></details>{heat_block}"
                f'<p><a href="/directory#dir-{esc(hall.id)}">The booths of {esc(hall.name)} as a list, with the way to walk '
                f"there in the client</a></p></section>"
            )
        shown = admin.alerts()
        alerts_text = "\n".join(f"{a.kind}:{a.message}" for a in shown)  # the live script redraws only on a change
        alerts = "".join(
            f'<li class="alert-{esc(a.kind)}">{esc(a.message)}'
            + (form(f"/organiser/processes/{quote(a.process, safe='')}/dismiss", session,
                    '<button type="submit">Dismiss</button>', cls="inline") if a.process is not None else "")
            + "</li>" for a in shown)
        processes = admin.cluster_processes()
        cluster = "" if processes is None else (
            '<section aria-labelledby="cluster-h"><h2 id="cluster-h">Hall processes of the cluster</h2>'
            + table("Live hall processes", ["Process", "Where visitors connect", "Load", "Instances"],
                    [(lp.record.id, lp.record.url, f"{lp.record.load} / {lp.record.capacity}",
                      ", ".join(f"{i.id} (cap {i.cap})" for i in lp.instances) or "none")
                     for lp in processes], empty="none seen yet.")
            + "</section>")
        exhibitors = {b.id: b.exhibitor for b in expo.booths}
        sales = table("Sales by booth and currency (paid orders)", ["Booth", "Orders", "Units", "Revenue"],
                      [(exhibitors.get(s.booth, s.booth), s.orders, s.units,
                        money(s.amount_minor, s.currency)) for s in await admin.sales()], empty="no paid orders yet.")
        hall_options = '<option value="">All halls</option>' + "".join(
            f'<option value="{esc(h.id)}">{esc(h.name)}</option>' for h in expo.halls)
        moderation = form("/organiser/moderate", session, (
            "<fieldset><legend>Moderate a visitor</legend>"
            + field("name", "Visitor (pick from the list, or type a name)", values.get("name", ""), error=errors.get("name"),
                    required=True, list="visitor-names", autocomplete="off")
            + field("reason", "Reason (shown to them)", values.get("reason", ""), error=errors.get("reason"))
            + field("minutes", "For how many minutes (empty: until lifted)", values.get("minutes", ""), kind="number",
                    error=errors.get("minutes"), min="1")
            + '<div class="buttons">'
            + "".join(f'<button type="submit" name="action" value="{a}">{label}</button>' for a, label in (
                ("mute", "Mute"), ("unmute", "Unmute"), ("kick", "Kick"), ("ban", "Ban"), ("unban", "Lift ban")))
            + "</div></fieldset>"), label="Moderate a visitor")
        names = "".join(f'<option value="{esc(a.visitor_id)}" label="{esc(a.name)}">{esc(a.name)}</option>'
                        for a in sorted(admin.avatars(), key=lambda a: a.name)[:500] if a.visitor_id is not None)
        announce = form("/organiser/announce", session, (
            "<fieldset><legend>Announcement</legend>"
            + field("text", "Text", values.get("text", ""), kind="textarea", error=errors.get("text"), required=True, maxlength="280")
            + f'<div class="field"><label for="announce-hall">To</label><select id="announce-hall" name="hall">{hall_options}</select></div>'
            + '<button type="submit">Announce</button></fieldset>'), label="Announcement")
        sanctions = table("Mutes and bans in force", ["Visitor", "What", "Reason", "Until", ""],
                          [(esc(f"{s.name} ({s.visitor})"), esc(s.kind.value), esc(s.reason),
                            "until lifted" if s.until is None else esc(_when(s.until)),
                            form("/organiser/moderate", session,  # lifted by visitor id: the person, not the name
                                 f'<input type="hidden" name="name" value="{esc(s.visitor)}">'
                                 f'<button type="submit" name="action" value="un{esc(s.kind.value)}" '
                                 f'aria-label="Lift the {esc(s.kind.value)} of {esc(s.name)}">Lift</button>', cls="inline"))
                           for s in admin.sanctions()], raw=True, empty="none.")
        reports = table("Reports from visitors", ["When", "From", "About", "Hall", "Reason", ""],
                        [(esc(_when(r.at)), esc(r.reporter), esc(r.visitor), esc(_hall_name(expo, r.hall)), esc(r.reason),
                          form(f"/organiser/reports/{r.id}", session, '<button type="submit">Mark handled</button>', cls="inline"))
                         for r in admin.reports()], raw=True, empty="none open.")
        p99 = admin.tick_p99()
        body = (
            f'<section aria-labelledby="alerts-h"><h2 id="alerts-h">Alerts</h2><ul id="alerts" aria-live="polite" data-text="{esc(alerts_text)}">{alerts}</ul>'
            f'<p>Tick p99 (last 10 s): <span id="tick-p99">{"-" if p99 is None else f"{p99 * 1000:g} ms"}</span>. '
            f'Visitors connected: <span id="connected">{sum(per_hall.values())}</span>.</p></section>'
            + cluster
            + "".join(halls)
            + f'<section aria-labelledby="sales-h"><h2 id="sales-h">Sales</h2>{sales}</section>'
            + f'<section aria-labelledby="mod-h"><h2 id="mod-h">Moderation</h2><datalist id="visitor-names">{names}</datalist>'
            + f'<div class="columns">{moderation}{announce}</div>{sanctions}{reports}</section>'
        )
        return self._html("Halls and moderation", body, session, script=True, notice=notice,
                          status=400 if errors else 200)

    async def live(self, request: Request, session: ConsoleSession) -> Response:
        """Server-sent events: the avatars of every hall four times a second, names once."""
        admin = self.admin

        async def frames():
            named: set[int | str] = set()
            beat = 0
            while not self.stopping.is_set() and not await request.is_disconnected():
                live = admin.live()  # in a cluster, every hall process's avatars
                names = {e: n for e, n in live.names.items() if e not in named}
                named.update(names)
                ids = admin.visitor_ids()
                frame = {"halls": live.positions, "names": names,
                         "visitor_ids": {e: ids[e] for e in names if e in ids}}
                if beat % 4 == 0:  # counts and alerts once a second
                    census = live.census
                    frame["halls_count"] = census.per_hall
                    frame["booths_count"] = census.per_booth
                    frame["alerts"] = [{"kind": a.kind, "message": a.message, "process": a.process}
                                       for a in admin.alerts(census=census)]
                    p99 = admin.tick_p99()
                    frame["tick_p99_ms"] = None if p99 is None else round(p99 * 1000, 2)
                beat += 1
                yield f"data: {json.dumps(frame, separators=(',', ':'))}\n\n"
                with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel on 3.11
                    async with asyncio.timeout(LIVE_INTERVAL):
                        await self.stopping.wait()

        response = StreamingResponse(frames(), media_type="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        return _secure(response)

    async def moderate(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        admin = self.admin
        action, name = data.get("action", ""), data.get("name", "").strip()
        reason, minutes_text = data.get("reason", "").strip(), data.get("minutes", "").strip()
        errors: dict[str, str] = {}
        if not name:
            errors["name"] = "whom? type a visitor's name"
        minutes = None
        if minutes_text:
            try:
                minutes = float(minutes_text)
            except ValueError:
                errors["minutes"] = f"{minutes_text!r} is not a number of minutes"
        if action in ("mute", "ban") and not reason:
            errors["reason"] = "say why: the visitor is shown the reason"
        if action not in ("mute", "unmute", "kick", "ban", "unban"):
            errors["name"] = f"unknown action {action!r}"
        if not errors:
            try:
                if action == "unmute":
                    notice = f"{name} may chat again." if admin.unmute(name) else f"{name} was not muted."
                elif action == "unban":
                    notice = f"{name}'s ban is lifted." if admin.unban(name) else f"{name} was not banned."
                else:
                    target = await admin.reach(name)  # once: a visitor here, or online at another hall process
                    shown = target.name  # tagged, for namesakes
                    if action == "mute":
                        admin.mute(target, reason, minutes)
                        notice = f"{shown} is muted: their chat reaches no one."
                    elif action == "kick":
                        admin.remove(target, reason)
                        notice = f"{shown} was removed from the expo."
                    else:
                        admin.ban(target, reason, minutes)
                        notice = f"{shown} is banned{'' if minutes is None else f' for {minutes:g} min'}."
                log.info("moderation", extra={"action": action, "visitor": name})
                return await self.organiser(request, session, notice=notice)
            except WhoError as exc:
                errors["name"] = str(exc)
            except ValueError as exc:
                errors["minutes" if "duration" in str(exc) else "reason"] = str(exc)
        return await self.organiser(request, session, errors=errors, values=data)

    async def announce(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        hall = data.get("hall") or None
        try:
            reached = self.admin.announce(data.get("text", ""), hall)
        except ValueError as exc:
            return await self.organiser(request, session, errors={"text": str(exc)}, values=data)
        known = self.admin.expo.hall(hall) if hall is not None else None
        where = "every hall" if known is None else known.name
        return await self.organiser(request, session, notice=f"Announced to {where}: {reached} visitors.")

    async def handle_report(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        try:
            report = int(request.path_params["report"])
        except ValueError:
            raise Refusal(404, "no such report") from None
        done = self.admin.handle_report(report)
        return await self.organiser(request, session, notice="Report marked handled." if done else "That report was handled already.")

    async def dismiss_process(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        process = request.path_params["process"]
        done = self.admin.dismiss_process_alert(process)
        return await self.organiser(request, session, notice=f"Alert about process {process} dismissed." if done
                                    else f"No alert about process {process} to dismiss.")

    async def exhibitors(self, request: Request, session: ConsoleSession, notice: str | None = None,
                         issued: tuple[str, str] | None = None) -> Response:
        expo = self.admin.expo
        shown = ""
        if issued:
            booth, token = issued
            shown = (f'<div class="card" role="status"><p>The login for <strong>{esc(booth)}</strong> (shown once: copy it now):</p>'
                     f'<p><code id="issued-token">{esc(token)}</code></p></div>')
        options = "".join(f'<option value="{esc(b.id)}">{esc(b.exhibitor)} ({esc(b.id)})</option>' for b in expo.booths)
        issue = form("/organiser/exhibitors", session, (
            "<fieldset><legend>Issue a login</legend>"
            f'<div class="field"><label for="issue-booth">Booth</label><select id="issue-booth" name="booth">{options}</select></div>'
            + field("label", "Who it is for", hint="e.g. the exhibitor's contact person")
            + '<button type="submit">Issue login</button></fieldset>'), label="Issue a login")
        rows = [(esc(login.booth), esc(login.label), esc(_when(login.created_at)),
                 "revoked" if login.revoked_at else form("/organiser/exhibitors/revoke", session,
                                                         f'<input type="hidden" name="digest" value="{esc(login.digest)}">'
                                                         '<button type="submit">Revoke</button>', cls="inline"))
                for login in self.credentials.logins()]
        body = shown + issue + table("Exhibitor logins", ["Booth", "For", "Issued", ""], rows, raw=True, empty="none issued.")
        return self._html("Exhibitor logins", body, session, notice=notice)

    async def issue_login(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        booth = data.get("booth", "")
        if self.admin.expo.booth(booth) is None:
            return await self.exhibitors(request, session, notice=f"no booth {booth!r}")
        token = self.credentials.issue(booth, data.get("label", ""))
        return await self.exhibitors(request, session, issued=(booth, token))

    async def revoke_login(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        digest = data.get("digest", "")
        booth = next((login.booth for login in self.credentials.logins() if login.digest == digest), None)
        if booth is None or not self.credentials.revoke(digest):
            return await self.exhibitors(request, session, notice="That login was revoked already.")
        self.sessions.close_booth(booth)
        return await self.exhibitors(request, session, notice=f"The login for {booth} is revoked; its sessions are closed.")

    # ------------------------------------------------------------------ exhibitor

    async def booth_page(self, request: Request, session: ConsoleSession, edit: booth_form.Edit | None = None,
                         notice: str | None = None, lead_errors: dict[str, str] | None = None,
                         slot_errors: dict[str, str] | None = None, slot_values: dict[str, str] | None = None,
                         edition_errors: dict[str, str] | None = None,
                         edition_values: dict[str, str] | None = None,
                         deal_form_state: tuple[str, dict[str, str], dict[str, str]] | None = None,
                         at: str | None = None) -> Response:
        """``deal_form_state``: (deal id, errors by field, values typed) of a quotation sent back.
        ``at``: the section (its heading's id) a form was sent from: each form's action jumps
        back there, so its ``notice`` is said under that heading, where the person looks."""
        booth = self.admin.expo.booth(request.path_params["booth"])
        assert booth is not None  # _authorise checked
        root = self.admin.world_root
        errors = edit.errors if edit else {}
        unreadable = None
        if edit is not None:
            values = edit.values
        elif root is not None:
            try:
                values = booth_form.form_values((await asyncio.to_thread(booth_form.load, root, booth))[1])
            except booth_form.Unreadable as exc:
                values, unreadable = {}, str(exc)
        else:
            values = {}
        live = await self.admin.live_stock(booth.id)
        here = self.admin.visitors_per_booth().get(booth.id, 0)
        admin_has_people = self.admin.has_exhibitor_stores
        general = errors.get("")
        rows = []
        n = sum(1 for k in values if k.endswith(".sku") and k.startswith("p") and k[1:].split(".")[0].isdigit())
        for i in range(n):
            sku = values.get(f"p{i}.sku", "")
            rows.append(self._product_fields(f"p{i}", f"Product {i + 1}: {sku}", values, errors,
                                             live=live.get(sku), removable=True))
        rows.append(self._product_fields(booth_form.NEW, "Add a product (leave the sku empty to add none)", values, errors))
        edit_form = form(f"/booth/{booth.id}#edit-h", session, (
            _error_summary(errors)
            + (f'<p class="error" role="alert">{esc(general)}</p>' if general else "")
            + "<fieldset><legend>The booth</legend>"
            + field("tagline", "Tagline", values.get("tagline", ""), error=errors.get("tagline"), required=True)
            + field("description", "Description", values.get("description", ""), kind="textarea", error=errors.get("description"))
            + "</fieldset>" + "".join(rows)
            + f'<button type="submit">Save and publish</button>'
            f'<p class="hint">Saved changes reach visitors in the hall at once. Prices are in {esc(booth.catalogue[0].currency if booth.catalogue else "")}.</p>'
        ), label="Edit the booth")
        if unreadable is not None:  # no form to stand on the file: saving it would lose what it holds
            edit_form = f'<p class="error" role="alert">The booth\'s file {esc(unreadable)}.</p>'
        orders = await self.admin.orders(booth.id)
        orders_table = table("Orders", ["When", "Visitor", "Product", "Qty", "Amount", "Status"],
                             [(_when(o.created_at), o.visitor, o.sku, o.qty, money(o.amount_minor, o.currency), o.status)
                              for o in orders[:50]], empty="no orders yet.", table_id="orders")
        try:
            balances = await self.admin.balances(booth.id)
            balance = table("Merchant balance at the bank", ["Currency", "Balance"],
                            [(c, amount(minor, c)) for c, minor in balances], empty="no merchant account (this server has no bank).")
        except Exception as exc:  # the bank is down: the rest of the page still works
            balance = f'<p class="error">The bank did not answer: {esc(exc)}</p>'
        leads = await self.admin.leads(booth.id)  # for its section, and the buyers' names in the deals
        shown = ({"sales-h", "edit-h"} | ({"leads-h", "slots-h", "stats-h"} if admin_has_people else set())
                 | ({"deals-h"} if self.admin.has_deals else set())
                 | ({"certs-h"} if self.admin.has_collectibles else set()))
        body = (
            f'<p>{esc(booth.exhibitor)} in {esc(_hall_name(self.admin.expo, booth.hall))}: '
            f'<strong id="here">{here}</strong> visitors at the booth now.</p>'
            + '<nav aria-label="On this page"><ul class="toc">'
            + "".join(f'<li><a href="#{anchor}">{label}</a></li>' for anchor, label in (
                ("leads-h", "Leads"), ("slots-h", "Meetings"), ("stats-h", "Analytics"),
                ("sales-h", "Orders and balance"), ("deals-h", "Requests for quotation"),
                ("certs-h", "Certificates of origin"),
                ("edit-h", "Edit the booth")) if anchor in shown)  # in the page's order
            + "</ul></nav>"
            + await self._people_sections(booth.id, session, leads, notice_errors=lead_errors or {},
                                          slot_errors=slot_errors or {}, slot_values=slot_values or {})
            + f'<section aria-labelledby="sales-h"><h2 id="sales-h">Orders and balance</h2>{balance}{orders_table}'
            f'<p><a href="/booth/{esc(booth.id)}/orders.csv">Download the orders (CSV)</a></p></section>'
            + await self._deals_section(booth, session, deal_form_state, leads)
            + await self._certificates_section(booth, session, edition_errors or {}, edition_values or {})
            + f'<section aria-labelledby="edit-h"><h2 id="edit-h">Edit the booth</h2>{edit_form}</section>'
        )
        if notice and (section := body.find(f'<h2 id="{at}"') if at else -1) >= 0:
            heading = body.index("</h2>", section) + len("</h2>")
            body, notice = body[:heading] + f'<p class="notice" role="status">{esc(notice)}</p>' + body[heading:], None
        return self._html(booth.exhibitor, body, session, notice=notice,
                          status=400 if errors or lead_errors or slot_errors or edition_errors
                          or (deal_form_state and deal_form_state[1]) else 200)

    async def _deals_section(self, booth: Booth, session: ConsoleSession,
                             sent_back: tuple[str, dict[str, str], dict[str, str]] | None, leads: list[Lead]) -> str:
        """The booth's requests for quotation: a quotation form for each one waiting, Confirm
        shipment for each order, Decline for any still open."""
        if not self.admin.has_deals:
            return ""
        deals = await self.admin.deals(booth.id)
        names = {lead.visitor: lead.display_name for lead in leads}  # an RFQ is a lead
        listed = table("Requests and deals, newest first",
                       ["Purchase order", "Asked", "Buyer", "Product", "Qty", "Terms", "State", "Quotation"],
                       [(d.id, _when(d.created_at), names.get(d.buyer, d.buyer), _product_name(booth, d.sku), f"{d.qty:,}",
                         f"{d.incoterm} → {iso.countries().get(d.destination, d.destination)}", d.state.value, _quotation(d))
                        for d in deals[:50]], empty="none yet: buyers ask with Q at your booth.", table_id="deals")
        forms = []
        for deal in [d for d in deals if not d.state.final][:20]:
            what = (f"{deal.id} for {names.get(deal.buyer, 'a buyer')}: {deal.qty:,} × {_product_name(booth, deal.sku)}, "
                    f"{deal.incoterm} → {deal.destination}")
            decline = form(f"/booth/{booth.id}/deals/{deal.id}/decline#deals-h", session,
                           '<button type="submit">Decline</button>', label=f"Decline {deal.id}", cls="inline")
            if deal.state is DealState.REQUESTED:
                errors, values = sent_back[1:] if sent_back and sent_back[0] == deal.id else ({}, {})
                forms.append(self._quote_form(booth, deal, what, session, errors, values) + decline)
            elif deal.state is DealState.ORDERED:
                forms.append(form(f"/booth/{booth.id}/deals/{deal.id}/ship#deals-h", session, (
                    f"<fieldset><legend>Ship {esc(what)}</legend><p>The deposit is held in escrow at the bank. "
                    "Confirm the shipment: the deposit is paid to you and the buyer is billed the balance.</p>"
                    '<button type="submit">Confirm shipment</button></fieldset>'), label=f"Ship {deal.id}") + decline)
            elif deal.state is DealState.QUOTED:
                forms.append(f"<p>{esc(what)}: quoted, waiting for the buyer.</p>" + decline)
        return (
            '<section aria-labelledby="deals-h"><h2 id="deals-h">Requests for quotation</h2>'
            "<p>Buyers ask for a quotation on a quantity, with an Incoterm and a destination. Answer here or in the hall "
            "with the booth's staff pass; a product with a price list in the booth's file is quoted by the list at once. "
            "The buyer's deposit is held in escrow at the bank until you confirm the shipment.</p>"
            f"{listed}{''.join(forms)}</section>"
        )

    def _quote_form(self, booth: Booth, deal: Deal, what: str, session: ConsoleSession, errors: dict[str, str],
                    values: dict[str, str]) -> str:
        product = booth.product(deal.sku)
        currency = product.currency if product else ""
        typed = {**deal_form.DEFAULTS, **values}

        def box(name: str, label: str, low: int | None = None, high: int | None = None, hint: str | None = None) -> str:
            number = low is not None  # the prices are text: "12.50", "3,900"
            return field(name, label, typed.get(name, ""), kind="number" if number else "text", error=errors.get(name),
                         hint=hint, field_id=f"{deal.id}-{field_id_of(name)}",
                         min=None if low is None else str(low), max=None if high is None else str(high),
                         inputmode=None if number else "decimal")
        general = errors.get("")
        tiers = "".join(
            f'<div class="tier">{box(f"t{row}.qty", f"Tier {row + 1}: from units", 1)}'
            f'{box(f"t{row}.price", f"unit price ({currency})")}</div>'
            for row in range(deal_form.TIER_ROWS))
        return form(f"/booth/{booth.id}/deals/{deal.id}/quote#deals-h", session, (
            f"<fieldset><legend>Quote {esc(what)}</legend>"
            + (f'<p class="error" role="alert">{esc(general)}</p>' if general else "")
            + tiers
            + box("valid_days", "Valid for (days)", 1, deal_form.MAX_VALID_DAYS)
            + box("lead_days", "Lead time (days)", 0, 365)
            + box("deposit_percent", "Deposit (%)", 0, 100, hint="paid into escrow with the purchase order")
            + '<button type="submit">Send the quotation</button></fieldset>'), label=f"Quote {deal.id}")

    async def _booth_deal(self, request: Request) -> tuple[Booth, Deal]:
        booth = self.admin.expo.booth(request.path_params["booth"])
        assert booth is not None  # _authorise checked
        deal_id = request.path_params["deal"]
        deal = next((d for d in await self.admin.deals(booth.id) if d.id == deal_id), None)
        if deal is None:
            raise Refusal(404, f"{booth.exhibitor} has no request {deal_id!r}")
        return booth, deal

    async def _deal_step(self, request: Request, session: ConsoleSession, deal: Deal, step: Awaitable[str],
                         typed: dict[str, str] | None = None) -> Response:
        """One step on one of the booth's deals; a refusal (or the bank's silence) is said on the
        page: in the quotation form sent back with ``typed`` (if the deal still has one), else as the notice."""
        try:
            notice = await step
        except Exception as exc:  # noqa: BLE001 - a rule said no, or the bank did not answer: say so, keep the page
            message = exc.message if isinstance(exc, DealRefused) else f"The bank did not answer: {exc}"
            if not isinstance(exc, DealRefused):
                log.warning("console deal step failed", extra={"deal": deal.id, "error": repr(exc)})
            if typed is None or deal.state is not DealState.REQUESTED:  # no form to say it in
                return await self.booth_page(request, session, notice=message, at="deals-h")
            return await self.booth_page(request, session, deal_form_state=(deal.id, {"": message}, typed))
        return await self.booth_page(request, session, notice=notice, at="deals-h")

    async def quote_deal(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        booth, deal = await self._booth_deal(request)
        product = booth.product(deal.sku)
        figures, errors = deal_form.parse(data, product.currency if product else "")
        if figures is None:
            return await self.booth_page(request, session, deal_form_state=(deal.id, errors, data))

        async def quote() -> str:
            moved = await self.admin.quote_deal(booth.id, deal.id, figures.tiers, figures.currency, figures.valid_days,
                                                figures.lead_days, figures.deposit_percent)
            return f"Quotation sent for {deal.id}: {_quotation(moved)}."
        return await self._deal_step(request, session, deal, quote(), typed=data)

    async def ship_deal(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        booth, deal = await self._booth_deal(request)

        async def ship() -> str:
            await self.admin.ship_deal(booth.id, deal.id)
            return f"Shipped {deal.id}: the deposit is paid to you; the buyer is billed the balance."
        return await self._deal_step(request, session, deal, ship())

    async def decline_deal(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        booth, deal = await self._booth_deal(request)

        async def decline() -> str:
            await self.admin.decline_deal(booth.id, deal.id)
            return f"Declined {deal.id}" + ("; the deposit goes back to the buyer." if deal.escrow_id else ".")
        return await self._deal_step(request, session, deal, decline())

    async def _certificates_section(self, booth: Booth, session: ConsoleSession, errors: dict[str, str],
                                    values: dict[str, str]) -> str:
        """The booth's editions of certificates of origin, and the form that opens one."""
        if not self.admin.has_collectibles:
            return ""
        try:
            editions = table("Editions", ["Product", "Batch", "Origin", "Issued", "Edition"],
                             [(_product_name(booth, e.product), e.batch or "", e.origin or "", f"{e.issued} of {e.size}", e.id)
                              for e in await self.admin.editions(booth.id)],
                             empty="none yet: open one below.", table_id="editions")
        except Exception as exc:  # the bank is down: the form still shows
            editions = f'<p class="error">The bank did not answer: {esc(exc)}</p>'
        chosen = values.get("sku", "")
        products = "".join(f'<option value="{esc(pr.sku)}"{" selected" if pr.sku == chosen else ""}>'
                           f"{esc(_product_name(booth, pr.sku))}</option>" for pr in booth.catalogue)
        general = errors.get("")
        opener = form(f"/booth/{booth.id}/editions#certs-h", session, (
            "<fieldset><legend>Open an edition</legend>"
            + (f'<p class="error" role="alert">{esc(general)}</p>' if general else "")
            + f'<div class="field"><label for="edition-sku">Product</label><select id="edition-sku" name="sku">{products}</select></div>'
            + field("size", "Certificates", values.get("size", "100"), kind="number", error=errors.get("size"),
                    min="1", max=str(MAX_EDITION_SIZE), hint="fixed once opened: never more")
            + field("batch", "Batch", values.get("batch", ""), error=errors.get("batch"), required=True, maxlength="200",
                    hint="e.g. the harvest or lot: 2027-05")
            + field("origin", "Origin", values.get("origin", ""), error=errors.get("origin"), required=True, maxlength="200",
                    hint="where it comes from, e.g. Katon-Karagay, East Kazakhstan")
            + '<button type="submit">Open the edition</button></fieldset>'), label="Open an edition")
        return (
            '<section aria-labelledby="certs-h"><h2 id="certs-h">Certificates of origin</h2>'
            "<p>Each buyer of a product with an edition gets the next certificate (serial, batch, origin, your booth, "
            "the order), held at the bank, where anyone can verify it by its serial. Certificates are free with the "
            "purchase and can never be sold; a holder may give one only to a contact, after the bank's holding period. "
            "A new edition for a product certifies its purchases from then on.</p>"
            f"{editions}{opener}</section>"
        )

    async def open_edition(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        from server.collectibles import CollectibleError

        booth = self.admin.expo.booth(request.path_params["booth"])
        assert booth is not None
        if not self.admin.has_collectibles:
            return await self.booth_page(request, session, edition_errors={"": "this server has no bank: no certificates"},
                                         edition_values=data)
        errors: dict[str, str] = {}
        sku = data.get("sku", "")
        if booth.product(sku) is None:
            errors[""] = f"{booth.exhibitor} sells no product {sku!r}"
        try:
            size = int(data.get("size", ""))
            if not 1 <= size <= MAX_EDITION_SIZE:
                raise ValueError
        except ValueError:
            errors["size"] = f"a whole number from 1 to {MAX_EDITION_SIZE:,}"
        batch, origin = data.get("batch", "").strip(), data.get("origin", "").strip()
        for name, value in (("batch", batch), ("origin", origin)):
            if not value:
                errors[name] = "say which" if name == "batch" else "say where it comes from"
            elif len(value) > 200:
                errors[name] = "at most 200 characters"
        if not errors:
            try:
                edition = await self.admin.open_edition(booth.id, sku, size, batch, origin)
            except CollectibleError as exc:
                errors[""] = exc.message
            except Exception as exc:  # the bank is down or did not answer
                errors[""] = f"The bank did not answer: {exc}"
            else:
                return await self.booth_page(request, session, at="certs-h",
                                             notice=f"Opened: {edition.size} certificates of origin "
                                                    f"for {_product_name(booth, sku)}, batch {batch}.")
        return await self.booth_page(request, session, edition_errors=errors, edition_values=data)

    async def _people_sections(self, booth_id: str, session: ConsoleSession, leads: list[Lead], notice_errors: dict[str, str],
                               slot_errors: dict[str, str], slot_values: dict[str, str]) -> str:
        """Leads (notes, rating, CSV), meeting slots, and the booth's analytics with charts."""
        admin = self.admin
        if not admin.has_exhibitor_stores:
            return ""
        rows = []
        for lead in leads:
            key = f"lead-{_slug(lead.visitor)}"
            rating = "".join(f'<option value="{n}"{" selected" if lead.rating == n else ""}>{n}</option>'
                             for n in range(1, 6))
            note = form(f"/booth/{booth_id}/leads#leads-h", session, (
                f'<input type="hidden" name="visitor" value="{esc(lead.visitor)}">'
                + field("notes", f"Notes on {lead.display_name}", lead.notes, kind="textarea", field_id=f"{key}-notes",
                        error=notice_errors.get(lead.visitor), maxlength="2000")
                + f'<div class="field"><label for="{key}-rating">Rating</label><select id="{key}-rating" name="rating">'
                f'<option value="">none</option>{rating}</select></div><button type="submit">Save</button>'),
                label=f"Notes on {lead.display_name}")
            rows.append((esc(lead.display_name), esc(", ".join(lead.sources)), lead.orders, lead.meetings,
                         esc(_when(lead.first_at)), esc(_when(lead.last_at)), note))
        leads_table = table("Leads", ["Visitor", "Met by", "Orders", "Meetings", "First", "Last", "Notes and rating"],
                            rows, raw=True, empty="no leads yet: cards exchanged, orders, meetings and requests for quotation at the booth become leads.",
                            table_id="leads")
        csv_link = f'<p><a id="leads-csv" href="/booth/{esc(booth_id)}/leads.csv">Download the leads (CSV)</a></p>' if leads else ""
        published = await admin.slots(booth_id)
        booked_by = await admin.booked_by(booth_id, published)
        slots = table("Meeting calendar (UTC)", ["Starts", "Minutes", "Host", "Booked by"],
                      [(_when(slot.starts_at), slot.minutes, slot.host_name,
                        booked_by.get(slot.id, "booked") if taken else "free") for slot, taken in published],
                      empty="no slots published yet.", table_id="slots")
        booth = admin.expo.booth(booth_id)
        hosts = "".join(f'<option value="{esc(visitor_id)}">{esc(name)}</option>' for visitor_id, name in admin.staff_here(booth_id))
        if not hosts:  # an empty list would say nothing: say who can host, and how
            hosts = '<option value="">nobody: no staff of this booth in the hall now (they join with its staff pass)</option>'
        slots += form(f"/booth/{booth_id}/slots#slots-h", session, (
            "<fieldset><legend>Publish a meeting slot</legend>"
            f'<div class="field"><label for="slot-host">Host</label><select id="slot-host" name="host">{hosts}</select></div>'
            + field("starts", "Starts (UTC)", slot_values.get("starts", ""), kind="datetime-local", error=slot_errors.get("starts"),
                    required=True)
            + field("minutes", "Minutes", slot_values.get("minutes", "30"), kind="number", error=slot_errors.get("minutes"),
                    min="5", max="240")
            + '<button type="submit">Publish</button></fieldset>'), label="Publish a meeting slot")
        figures = await admin.figures(booth_id)
        charts = ""
        if figures is not None:
            f = figures.funnel
            dwell = "-" if figures.dwell_p50 is None else f"{figures.dwell_p50:.0f} s (p90 {figures.dwell_p90:.0f} s)"
            revenue = ", ".join(money(minor, cur) for cur, minor in figures.revenue) or "none"
            charts = (
                f'<p>Visits: <strong>{figures.visits}</strong> by {_visitors(figures.unique_visitors)}; dwell p50 {dwell}; '
                f"cards exchanged {figures.cards_exchanged}; meetings booked {figures.meetings_booked}; "
                f"requests for quotation {figures.quotes_requested}; revenue {revenue}.</p>"
                + bars_svg("Funnel: passed by, entered, opened the catalogue, ordered, paid",
                           [("passed by", f.passed), ("entered", f.entered), ("opened catalogue", f.opened_catalogue),
                            ("ordered", f.ordered), ("paid", f.paid)])
                + bars_svg("Visits by hour (UTC)", [(f"{h:02d}:00", n) for h, n in enumerate(figures.visits_by_hour) if n])
            )
        booth = admin.expo.booth(booth_id)
        hall = admin.expo.hall(booth.hall) if booth else None
        heat = await admin.heatmap(hall.id) if hall else None
        heat_svg = (heatmap_svg(heat.counts, heat.cell, hall, admin.expo.booths_in(hall.id), booth_id)
                    if heat is not None and hall is not None else "")
        return (f'<section aria-labelledby="leads-h"><h2 id="leads-h">Leads</h2>{csv_link}{leads_table}</section>'
                f'<section aria-labelledby="slots-h"><h2 id="slots-h">Meetings</h2>{slots}</section>'
                f'<section aria-labelledby="stats-h"><h2 id="stats-h">Analytics</h2>{charts}'
                + (f'<h3>Where visitors stood in {esc(hall.name)} in the last {HEATMAP_MINUTES:g} minutes</h3>{heat_svg}'
                   if heat_svg and hall else "")
                + "</section>")

    async def annotate_lead(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        from server.people.leads import LeadError

        booth, visitor = request.path_params["booth"], data.get("visitor", "")
        rating_text = data.get("rating", "").strip()
        try:
            rating = int(rating_text) if rating_text else None
            await self.admin.annotate_lead(booth, visitor, data.get("notes", ""), rating)
        except (LeadError, ValueError) as exc:
            return await self.booth_page(request, session, lead_errors={visitor: str(exc)})
        except KeyError:
            raise Refusal(404, "no such lead at this booth") from None
        return await self.booth_page(request, session, notice="Lead saved.", at="leads-h")

    async def publish_slot(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        import datetime as dt

        from server.people.meetings import MeetingError

        booth = self.admin.expo.booth(request.path_params["booth"])
        assert booth is not None
        host = data.get("host", "")  # a visitor id: a slot's host is the person, as in the hall
        errors: dict[str, str] = {}
        if host not in {visitor_id for visitor_id, _ in self.admin.staff_here(booth.id)}:
            errors["starts"] = "pick a host among the booth's staff in the hall (they join with the booth's pass)"
        try:
            starts = dt.datetime.fromisoformat(data.get("starts", "")).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            errors["starts"] = "give a date and time, e.g. 2027-05-10T14:30"
        try:
            minutes = int(data.get("minutes", ""))
        except ValueError:
            errors["minutes"] = "a whole number of minutes"
        if not errors:
            try:
                slot = await self.admin.publish_slot(booth.id, host, starts, minutes)
            except MeetingError as exc:
                errors["minutes" if "minutes" in exc.message else "starts"] = exc.message
            else:
                return await self.booth_page(request, session, at="slots-h",
                                             notice=f"Published: {_when(slot.starts_at)}, "
                                                    f"{slot.minutes} min with {slot.host_name}.")
        return await self.booth_page(request, session, slot_errors=errors, slot_values=data)

    async def leads_csv(self, request: Request, session: ConsoleSession) -> Response:
        booth = request.path_params["booth"]
        response = Response(await self.admin.leads_csv(booth), media_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{booth}-leads.csv"'
        return _secure(response)

    def _product_fields(self, row: str, legend: str, values: dict[str, str], errors: dict[str, str],
                        live: int | None = None, removable: bool = False) -> str:
        def f(name: str, label: str, **kw) -> str:
            return field(f"{row}.{name}", label, values.get(f"{row}.{name}", ""), error=errors.get(f"{row}.{name}"), **kw)

        stock_hint = None if live is None else f"{live} left to sell now; a new number here restocks to it"
        out = (f'<fieldset class="product"><legend>{esc(legend)}</legend>'
               + f("sku", "SKU", readonly=removable or None, hint="letters, digits, '.', '-', '_'")
               + f("name", "Name") + f("description", "Description", kind="textarea")
               + f("price", "Price", inputmode="decimal") + f("stock", "Stock", inputmode="numeric", hint=stock_hint)
               + f("max_per_visitor", "Limit per visitor", inputmode="numeric"))
        if removable:
            out += (f'<div class="field check"><input type="checkbox" id="{row}-remove" name="{row}.remove" value="1">'
                    f'<label for="{row}-remove">Remove this product</label></div>')
        return out + "</fieldset>"

    async def booth_save(self, request: Request, session: ConsoleSession, data: dict[str, str]) -> Response:
        booth = self.admin.expo.booth(request.path_params["booth"])
        assert booth is not None
        root = self.admin.world_root
        if root is None:
            raise Refusal(404, "this expo has no world files to edit")
        try:
            edit = await asyncio.to_thread(booth_form.check_edit, root, booth, data)
        except booth_form.Unreadable:  # the page says what is wrong with the file; nothing is written
            refused = await self.booth_page(request, session)
            refused.status_code = 409
            return refused
        if not edit.ok:
            return await self.booth_page(request, session, edit=edit)
        old_stock = {pr.sku: pr.stock for pr in booth.catalogue}
        await asyncio.to_thread(booth_form.save, root, booth, edit.text)
        problems = await self.admin.reload_world()
        if problems:  # another file broke meanwhile: ours is written, the running world stays
            return await self.booth_page(request, session, at="edit-h",
                                         notice="Saved, but the expo does not load: " + "; ".join(problems))
        updated = self.admin.expo.booth(booth.id)
        for product in updated.catalogue if updated else ():
            if old_stock.get(product.sku) != product.stock:
                await self.admin.set_stock(booth.id, product.sku, product.stock)
        log.info("booth edited", extra={"booth": booth.id, "role": session.identity.role.value})
        return await self.booth_page(request, session, notice="Saved: visitors see the new booth now.", at="edit-h")

    async def orders_csv(self, request: Request, session: ConsoleSession) -> Response:
        import csv
        import io

        booth = request.path_params["booth"]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["order_id", "created_at_utc", "visitor", "sku", "qty", "amount", "currency", "status"])
        for o in await self.admin.orders(booth, limit=100_000):
            places = iso.decimals(o.currency)
            writer.writerow([o.id, _when(o.created_at), o.visitor, o.sku, o.qty,
                             f"{o.amount_minor / 10**places:.{places}f}", o.currency, o.status])
        response = Response(out.getvalue(), media_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{booth}-orders.csv"'
        return _secure(response)

    # ------------------------------------------------------------------ directory

    async def directory(self, request: Request) -> Response:
        """Every booth, hall by hall, with the link (and the command) that walks the desktop
        client there: the way into the hall without the 3D view."""
        session = self._session(request)
        expo = self.admin.expo
        per_booth = self.admin.visitors_per_booth()
        sections = []
        for hall in expo.halls:
            items = "".join(
                f'<li id="booth-{esc(b.id)}"><h3>{esc(b.exhibitor)}</h3><p>{esc(b.tagline)}</p>'
                f"<p>{esc(iso.countries().get(b.country, b.country))} · "
                f"{len(b.catalogue)} products · {_visitors(per_booth.get(b.id, 0))} now</p>"
                f'<p><a class="walk" id="walk-{esc(b.id)}-link" href="{esc(self.link.url(b.id))}">Walk me there</a>'
                f' (opens the desktop client)</p>'
                f'<p id="walk-{esc(b.id)}-label">Without the client\'s link handler, run this in a terminal</p>'
                f'<code class="command" id="walk-{esc(b.id)}" aria-labelledby="walk-{esc(b.id)}-label">'
                f"{esc(self.link.command(b.id))}</code></li>"
                for b in sorted(expo.booths_in(hall.id), key=lambda b: b.exhibitor))
            sections.append(f'<section aria-labelledby="dir-{esc(hall.id)}"><h2 id="dir-{esc(hall.id)}">{esc(hall.name)}</h2>'
                            f'<ul class="directory">{items}</ul></section>')
        verify = '<p><a href="/certificates">Verify a certificate of origin by its serial</a></p>'
        return self._html("Booth directory", verify + "".join(sections), session)

    async def certificate(self, request: Request) -> Response:
        """Public: a certificate (any collectible) by its serial, as the bank's ledger has it now:
        what it certifies, its number in the edition, who holds it since when, every change of
        holder with its entry's hash in the bank's chain."""
        from server.admin import SERIAL

        session = self._session(request)
        serial = request.query_params.get("serial", "").strip()
        ask = ('<form method="get" action="/certificates" aria-label="Verify a certificate">'
               + field("serial", "Serial", serial, required=True, maxlength="120",
                       hint="as printed on the certificate, e.g. ed_592105b9afa421026438bfea-007")
               + '<button type="submit">Verify</button></form>')

        def refused(message: str, status: int) -> Response:
            return self._html("Verify a certificate", f'<p class="error" role="alert">{esc(message)}</p>{ask}', session,
                              status=status)

        if not serial:
            return self._html("Verify a certificate", ask, session)
        if not self.admin.has_collectibles:
            return refused("This expo has no bank: it issues no certificates.", 404)
        if not SERIAL.fullmatch(serial):
            return refused(f"{serial} is not a serial: letters, digits, '_' and '-' only.", 400)
        try:
            found = await self.admin.certificate(serial)
        except Exception as exc:  # the bank is down
            return refused(f"The bank did not answer: {exc}", 503)
        if found is None:
            return refused(f"The bank has no certificate {serial}: it was never issued.", 404)
        item, booth_id = found
        e = item.edition
        booth = self.admin.expo.booth(booth_id) if booth_id else None
        issuer = f"{booth.exhibitor} ({iso.countries().get(booth.country, booth.country)})" if booth else None
        facts = [("Certifies", e.title), ("Issued by", issuer), ("Number", f"{item.number} of {e.size}"),
                 ("Product", _product_name(booth, e.product) if booth else e.product),
                 ("Batch", e.batch), ("Origin", e.origin), ("Event", e.event), ("Order", item.order_id),
                 ("Issued", _when(item.issued_at.timestamp())), ("Held by", item.holder_account_id),
                 ("Held since", _when(item.acquired_at.timestamp())),
                 ("May be given from", _when(item.giftable_from.timestamp()))]
        listed = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts if v)
        history = table("Holders, as the bank's ledger has them", ["Ledger entry", "What", "From", "To", "When", "Entry hash"],
                        [(h.seq, h.kind, h.from_account_id, h.to_account_id, _when(h.created_at.timestamp()), h.hash)
                         for h in item.provenance], table_id="provenance")
        return self._html(f"Certificate {item.serial}", (
            f'<p role="status">The bank holds this certificate: <strong>{esc(item.serial)}</strong>. It can never be '
            "sold; it changes hands only as a gift between contacts, after the holding period.</p>"
            f'<dl class="facts">{listed}</dl>{history}{ask}'), session)


def _slug(text: str) -> str:
    """An id-safe form of a visitor id (ids in HTML must be unique and plain)."""
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _visitors(n: int) -> str:
    return "1 visitor" if n == 1 else f"{n} visitors"


def _hall_name(expo: Expo, hall_id: str) -> str:
    hall = expo.hall(hall_id)
    return hall.name if hall is not None else hall_id


def _error_summary(errors: dict[str, str]) -> str:
    """At the top of a refused form: how many problems, each a link to its field."""
    if not errors:
        return ""
    items = "".join(
        f'<li><a href="#{esc(field_id_of(name))}">{esc(name or "the booth file")}: {esc(message)}</a></li>'
        if name else f"<li>{esc(message)}</li>" for name, message in errors.items())
    n = len(errors)
    return (f'<div class="error-summary" role="alert" tabindex="-1" id="error-summary"><h3>Not saved: '
            f'{n} problem{"s" if n != 1 else ""} to fix</h3><ul>{items}</ul></div>')


def _landing(identity: Identity) -> str:
    return "/organiser" if identity.role is Role.ORGANISER else f"/booth/{identity.booth}"


def _quotation(deal: Deal) -> str:
    """'3,900.00 KZT a unit, 468,000.00 KZT in all; deposit 30 %; valid until ...', or '' unquoted."""
    q, total = deal.quote, deal.total_minor
    if q is None:
        return ""
    unit = q.unit_price(deal.qty)
    head = (f"{money(iso.to_minor_units(unit, q.currency), q.currency)} a unit" if unit is not None
            else "below the first tier")
    if total is not None:
        head += f", {money(total, q.currency)} in all; deposit {q.deposit_percent} %"
    return f"{head}; valid until {_when(q.valid_until)}"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _secure(response: Response) -> Response:
    """Headers for every page: nothing from elsewhere, no framing, no sniffing."""
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                                   "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


class ConsoleServer:
    """The console's listener on the world server's loop; ``stop`` ends streams, then it."""

    def __init__(self, console: Console, server, task: asyncio.Task) -> None:
        self.console = console
        self.server = server
        self.task = task

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.console.stopping.set()
        self.server.should_exit = True
        await self.task
        self.console.credentials.close()


async def start_console(expo_server: ExpoServer, host: str, port: int) -> ConsoleServer:
    """The startup hook server.app calls with --console-port: moderation, logins, the app."""
    import uvicorn

    data = expo_server.config.data_dir
    assert expo_server.moderation is not None  # opened by the server's start, before it listens
    admin = Admin(expo_server, expo_server.moderation, time.time)
    credentials = Credentials(data / "console", time.time)
    console = Console(admin, credentials, ClientLink(f"ws://{expo_server.config.host}:{expo_server.port}/"))
    server = uvicorn.Server(uvicorn.Config(console.app, host=host, port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(), name="console")
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
            raise SystemExit(f"the console could not listen on {host}:{port}")
        await asyncio.sleep(0.02)
    running = ConsoleServer(console, server, task)
    log.info("console listening", extra={"url": f"http://{host}:{running.port}/", "token_file": str(credentials.token_file)})
    return running
