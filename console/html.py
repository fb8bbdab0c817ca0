"""Server-rendered HTML: every value escaped, one layout, forms that carry the CSRF token.

No template engine: the pages are small, and building them from functions keeps every
interpolation visibly passing through ``esc``.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from .auth import ConsoleSession, Role


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def attrs(**values: object) -> str:
    """HTML attributes; a True value is a bare attribute, False/None leave it out."""
    out = []
    for name, value in values.items():
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            out.append(f" {name}")
        elif value not in (False, None):
            out.append(f' {name}="{esc(value)}"')
    return "".join(out)


def csrf_field(session: ConsoleSession) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(session.csrf)}">'


def form(action: str, session: ConsoleSession, body: str, label: str | None = None, cls: str = "") -> str:
    aria = attrs(aria_label=label, class_=cls or None)
    return f'<form method="post" action="{esc(action)}"{aria}>{csrf_field(session)}{body}</form>'


def field_id_of(name: str) -> str:
    """The element id of a form field's input: ``p0.price`` -> ``p0-price``."""
    return name.replace(".", "-").replace("[", "-").replace("]", "")


def field(name: str, label: str, value: object = "", *, kind: str = "text", error: str | None = None,
          field_id: str | None = None, required: bool = False, hint: str | None = None, **extra: object) -> str:
    """A labelled input; its error (if any) right under it, tied to it for screen readers."""
    fid = field_id or field_id_of(name)
    described = " ".join(x for x in (f"{fid}-hint" if hint else "", f"{fid}-error" if error else "") if x) or None
    control = (f'<textarea{attrs(id=fid, name=name, required=required, aria_invalid="true" if error else None, aria_describedby=described, **extra)}>'
               f"{esc(value)}</textarea>" if kind == "textarea" else
               f'<input{attrs(id=fid, name=name, type=kind, value=value, required=required, aria_invalid="true" if error else None, aria_describedby=described, **extra)}>')
    out = f'<div class="field{" invalid" if error else ""}"><label for="{esc(fid)}">{esc(label)}</label>{control}'
    if hint:
        out += f'<p class="hint" id="{esc(fid)}-hint">{esc(hint)}</p>'
    if error:
        out += f'<p class="error" id="{esc(fid)}-error" role="alert">{esc(error)}</p>'
    return out + "</div>"


def table(caption: str, headers: Iterable[str], rows: Iterable[Iterable[object]], *, raw: bool = False,
          empty: str = "Nothing yet.", table_id: str | None = None) -> str:
    """A table with a caption and column headers; cells are escaped unless ``raw``."""
    rows = list(rows)
    if not rows:
        return f'<p class="empty"{attrs(id=table_id)}>{esc(caption)}: {esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table{attrs(id=table_id)}><caption>{esc(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def page(title: str, body: str, session: ConsoleSession | None = None, *, script: bool = False,
         notice: str | None = None, expo_name: str = "") -> str:
    nav = ""
    if session is not None:
        links = ['<a href="/directory">Booth directory</a>']
        if session.identity.role is Role.ORGANISER:
            links.insert(0, '<a href="/organiser">Halls and moderation</a>')
            links.insert(1, '<a href="/organiser/exhibitors">Exhibitor logins</a>')
        else:
            links.insert(0, f'<a href="/booth/{esc(session.identity.booth)}">My booth</a>')
        who = "Organiser" if session.identity.role is Role.ORGANISER else f"Exhibitor of {session.identity.booth}"
        logout = form("/logout", session, '<button type="submit">Log out</button>', cls="inline")
        nav = (f'<nav aria-label="Console"><ul>{"".join(f"<li>{link}</li>" for link in links)}</ul>'
               f'<p class="who">{esc(who)}</p>{logout}</nav>')
    flash = f'<p class="notice" role="status">{esc(notice)}</p>' if notice else ""
    js = '<script src="/static/console.js" defer></script>' if script else ""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(expo_name or 'Expo console')}</title>"
        f'<link rel="stylesheet" href="/static/console.css">{js}</head>'
        f'<body><a class="skip" href="#main">Skip to content</a>'
        f'<header><p class="brand">{esc(expo_name or "Expo")} console</p>{nav}</header>'
        f'<main id="main" tabindex="-1"><h1>{esc(title)}</h1>{flash}{body}</main></body></html>'
    )
