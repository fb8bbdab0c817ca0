"""An exhibitor's report: its figures and leads as CSV, its hall's heatmap and its charts as PNG.

Everything is read from the event log and the people store, for one booth only: the
report of one exhibitor never holds another's leads. Figures and leads go through the same
CSV rules (``server.people.leads.to_csv``: UTF-8 with BOM, CRLF, formulas defused).
Pictures are drawn with matplotlib's object API (``Figure``), no pyplot and no display.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from server.people.leads import csv_rows, looked_at, to_csv
from server.people.store import PeopleStore
from world import iso
from world.model import Booth, Expo

from .aggregate import FUNNEL_STAGES, BoothFigures, booth_figures
from .heatmap import Heatmap, heatmap
from .store import EventLog


@dataclass(frozen=True, slots=True)
class Report:
    figures: BoothFigures
    leads: int
    files: tuple[Path, ...]


def write_report(expo: Expo, booth_id: str, events: EventLog, people: PeopleStore, out: Path,
                 cell: float = 1.0) -> Report:
    booth = expo.booth(booth_id)
    if booth is None:
        known = ", ".join(b.id for b in expo.booths)
        raise LookupError(f"no booth {booth_id!r} in {expo.name}; booths: {known}")
    hall = expo.hall(booth.hall)
    assert hall is not None, booth.hall
    out.mkdir(parents=True, exist_ok=True)
    log = events.events(booth.id)
    figures = booth_figures(log, booth.id)
    leads = people.leads(booth.id)
    cards = people.cards([lead.visitor for lead in leads if lead.card_shared])
    heat = heatmap(events.positions(hall.id), hall, cell)

    paths = (out / f"{booth.id}-figures.csv", out / f"{booth.id}-leads.csv",
             out / f"{booth.id}-heatmap.png", out / f"{booth.id}-charts.png")
    paths[0].write_bytes(to_csv(figure_rows(figures), header=("figure", "value")))
    paths[1].write_bytes(to_csv(csv_rows(leads, cards, looked_at(log, booth.id))))
    draw_heatmap(heat, expo, booth).savefig(paths[2], dpi=110)
    draw_charts(figures, booth).savefig(paths[3], dpi=110)
    return Report(figures, len(leads), paths)


def figure_rows(f: BoothFigures) -> list[list[str]]:
    def seconds(v: float | None) -> str:
        return "" if v is None else f"{v:.3f}"

    rows = [["booth", f.booth], ["visits", str(f.visits)], ["unique_visitors", str(f.unique_visitors)],
            ["dwell_p50_seconds", seconds(f.dwell_p50)], ["dwell_p90_seconds", seconds(f.dwell_p90)]]
    rows += [[f"funnel_{name}", str(n)] for (name, _), n in zip(FUNNEL_STAGES, f.funnel.as_tuple())]
    rows += [["orders", str(f.orders)], ["cards_exchanged", str(f.cards_exchanged)],
             ["meetings_booked", str(f.meetings_booked)], ["quotes_requested", str(f.quotes_requested)]]
    rows += [[f"revenue_{currency}", str(iso.from_minor_units(minor, currency))] for currency, minor in f.revenue]
    rows += [[f"visits_utc_{hour:02d}", str(n)] for hour, n in enumerate(f.visits_by_hour)]
    rows.append(["peak_hours_utc", ";".join(f"{h:02d}" for h in f.peak_hours)])
    return rows


def draw_heatmap(heat: Heatmap, expo: Expo, booth: Booth) -> Figure:
    """The hall seen from above: visitor-seconds per cell (log colour scale, pale to dark
    red), every booth outlined, the exhibitor's own in blue and named."""
    aspect = heat.depth / heat.width
    fig = Figure(figsize=(10, max(3.0, 10 * aspect) + 0.8))
    ax = fig.add_subplot()
    counts = np.ma.masked_equal(heat.counts, 0)
    image = ax.imshow(counts, origin="lower", extent=(0, heat.cols * heat.cell, 0, heat.rows * heat.cell),
                      cmap="YlOrRd", norm=LogNorm(vmin=1, vmax=max(2, int(heat.counts.max()))),
                      interpolation="nearest")
    ax.set_facecolor("white")
    for other in expo.booths_in(heat.hall):
        fp = other.footprint
        mine = other.id == booth.id
        ax.add_patch(Rectangle((fp.min_x, fp.min_y), fp.width, fp.depth, fill=False, lw=2.5 if mine else 0.8,
                               edgecolor="#1f4e9e" if mine else "#888888"))
        if mine:  # only the exhibitor's own booth is named: the others' ids would overlap
            ax.annotate(booth.exhibitor, (fp.centre.x, fp.max_y), xytext=(0, 6), textcoords="offset points",
                        ha="center", va="bottom", fontsize=9, color="#1f4e9e", weight="bold")
    ax.set_xlim(0, heat.width)
    ax.set_ylim(0, heat.depth)
    ax.set_xlabel("x (m, east)")
    ax.set_ylabel("y (m, north)")
    ax.set_title(f"{heat.hall}: where visitors stood ({heat.total} visitor-seconds, {heat.cell:g} m cells)")
    fig.colorbar(image, ax=ax, label="visitor-seconds per cell", shrink=0.8)
    fig.tight_layout()
    return fig


def draw_charts(f: BoothFigures, booth: Booth) -> Figure:
    fig = Figure(figsize=(11, 7))
    funnel, hours, dwell, money = fig.subplots(2, 2).ravel()
    names = [name.replace("_", " ") for name, _ in FUNNEL_STAGES]
    counts = f.funnel.as_tuple()
    bars = funnel.barh(names[::-1], counts[::-1], color=booth.primary.hex)
    funnel.bar_label(bars, padding=3)
    funnel.set_title("Funnel (distinct visitors)")
    hours.bar(range(24), f.visits_by_hour, color=booth.secondary.hex, edgecolor="#333333")
    hours.set_xticks(range(0, 24, 3))
    hours.set_title("Visits by hour (UTC)" + (f"; peak {', '.join(f'{h:02d}h' for h in f.peak_hours)}" if f.peak_hours else ""))
    dwell.set_title(f"Dwell per visit (s): {f.visits} visits by {f.unique_visitors} visitors")
    dwell.bar_label(dwell.bar(["p50", "p90"], [f.dwell_p50 or 0, f.dwell_p90 or 0], color=booth.primary.hex),
                    fmt="%.1f s", padding=3)
    money.set_title("Revenue paid")
    if f.revenue:
        labels = [c for c, _ in f.revenue]
        values = [float(iso.from_minor_units(m, c)) for c, m in f.revenue]
        bars = money.bar(labels, values, color=booth.secondary.hex, edgecolor="#333333")
        money.bar_label(bars, labels=[f"{v:,.2f} {c}" for c, v in zip(labels, values)], padding=3)
    else:
        money.text(0.5, 0.5, "no paid orders yet", ha="center", va="center", transform=money.transAxes)
    for ax in (dwell, money):
        ax.margins(y=0.15)  # room for the bar labels
    funnel.margins(x=0.12)
    fig.suptitle(f"{booth.exhibitor} ({booth.id})")
    fig.tight_layout()
    return fig
