"""The pages: server-rendered HTML shells whose small scripts (``static/``,
shipped in the wheel: no CDN, no build step) read the API.

``/`` lists what the server serves; ``/world`` replays a world day;
``/runs`` overlays runs' metrics; ``/digest`` charts a Chronos user's
completions and streaks.  A page whose store the server was not given says
which option gives it instead of loading its script.
"""

from __future__ import annotations

import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chronoledger._version import __version__
from chronoledger.server.config import DEFAULT_POINTS
from chronoledger.server.stores import Stores

NAV = (("/", "Home"), ("/world", "World replay"), ("/runs", "Run charts"), ("/digest", "Behaviour digest"),
       ("/docs", "API"))
# a page's own scripts only: no inline script, no other origin
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"


def _page(path: str, title: str, body: str, scripts: tuple[str, ...] = ()) -> HTMLResponse:
    nav = " ".join(f'<a href="{href}"{" class=here" if href == path else ""}>{name}</a>' for href, name in NAV)
    tags = "".join(f'<script src="/static/{s}"></script>' for s in ("chart.js", *scripts)) if scripts else ""
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - chronoledger'
           f'</title><meta name="viewport" content="width=device-width, initial-scale=1">'
           f'<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/style.css">{tags}</head>'
           f'<body data-ready="{0 if scripts else 1}"><header><strong>chronoledger</strong> {nav}'
           f'<span class="muted">v{__version__}</span></header><main>{body}</main></body></html>')
    return HTMLResponse(doc, headers={"Content-Security-Policy": CSP})


def _missing(path: str, title: str, option: str) -> HTMLResponse:
    return _page(path, title, f"<h1>{html.escape(title)}</h1><p class=panel>This server was started without "
                              f"<code>{html.escape(option)}</code>; start it with that option to see this page.</p>")


def routes(stores: Stores) -> list[Route | Mount]:
    cfg = stores.config

    def home(request: Request) -> HTMLResponse:
        rows = []
        for label, value, page in (("Chronos user folder", cfg.user, "/digest"), ("World database", cfg.world, "/world"),
                                   ("Runs folder", cfg.runs, "/runs"), ("Table registry", cfg.tables, "/api/tables"),
                                   ("Runtime database", cfg.runtime, "/api/runtime/sessions")):
            shown = html.escape(str(value)) if value is not None else '<span class="muted">not given</span>'
            link = f'<a href="{page}">{page}</a>' if value is not None else ""
            rows.append(f"<tr><td>{label}</td><td>{shown}</td><td>{link}</td></tr>")
        mode = "read and write (with the token)" if cfg.token else "read-only (no --token)"
        body = (f"<h1>What this server serves</h1><div class=panel><table>{''.join(rows)}</table>"
                f"<p class=muted>Writes: {mode}. The API is described at <a href='/openapi.json'>/openapi.json</a>."
                f"</p></div>")
        return _page("/", "Home", body)

    def world(request: Request) -> HTMLResponse:
        if cfg.world is None:
            return _missing("/world", "World replay", "--world DB")
        body = ("<h1>World replay</h1><p><label>Run <select id=run></select></label> "
                "<label>Day <select id=day></select></label> "
                "<span id=summary class=muted></span></p>"
                "<div class=panel><div id=clock></div><input id=scrubber type=range min=0 max=0 value=0 "
                "aria-label='tick'></div>"
                "<div class=row><div id=places></div><div id=side>"
                "<div class=panel><h2>Conversations at this tick</h2><div id=conversations></div></div>"
                "<div class=panel><h2>Relationships that changed this day</h2><ul id=relationships></ul></div>"
                "<div class=panel id=agent-day><p class=muted>Click an agent to see its day.</p></div>"
                "</div></div>")
        return _page("/world", "World replay", body, ("world.js",))

    def runs(request: Request) -> HTMLResponse:
        if cfg.runs is None:
            return _missing("/runs", "Run charts", "--runs DIR")
        body = ("<h1>Run charts</h1><div class=row><div class=panel id=run-list><h2>Runs</h2></div>"
                "<div class=grow><p><label>Metric <select id=metric></select></label>"
                f"<label>Points <select id=points><option>500</option><option selected>{DEFAULT_POINTS}</option>"
                "<option>10000</option></select></label>"
                "<label>Against <select id=axis><option value=record selected>record (step)</option>"
                "<option value=since>time since start</option><option value=timestamp>timestamp</option>"
                "</select></label><label><input type=checkbox id=full> full resolution</label></p>"
                "<div id=charts></div><p class=muted>Thinned for display: each of points/2 buckets of records "
                "keeps its lowest and highest value, so every spike is drawn.</p></div></div>")
        return _page("/runs", "Run charts", body, ("runs.js",))

    def digest(request: Request) -> HTMLResponse:
        if cfg.user is None:
            return _missing("/digest", "Behaviour digest", "--user DIR")
        body = ("<h1>Behaviour digest</h1><div class=panel id=completions></div>"
                "<div class=panel id=streaks></div>"
                "<div class=panel><h2>Dashboard metrics (as Chronos's /api/trends/metrics)</h2>"
                "<table id=metrics></table></div>")
        return _page("/digest", "Behaviour digest", body, ("digest.js",))

    static = StaticFiles(directory=str(resources.files("chronoledger.server").joinpath("static")))
    return [Route("/", home), Route("/world", world), Route("/runs", runs), Route("/digest", digest),
            Mount("/static", app=static, name="static")]
