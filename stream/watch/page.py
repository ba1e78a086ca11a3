"""The dashboard page, live or frozen: one HTML template and one script, drawn with plotly.js from the installed plotly wheel.

Live, the page loads the scripts from the dashboard server and polls its
JSON; frozen (the run report), both scripts and the data are written into
one self-contained file. Either way nothing is fetched from the internet:
plotly.js is the copy inside the plotly package on this machine.
"""

from __future__ import annotations

import html
import importlib.util
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from sessionrec.model.errors import DataError

STATIC = files("sessionrec.stream.watch") / "static"


def plotly_js() -> Path:
    """plotly.min.js inside the installed plotly package (its Python side is never imported)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the dashboard needs plotly.js from the Python package plotly: pip install plotly")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise DataError(f"plotly.min.js is not where the plotly package keeps it ({path}); reinstall plotly")
    return path


def dashboard_js() -> str:
    return (STATIC / "dashboard.js").read_text()


def live_page(title: str, refresh_s: float, window_s: float) -> str:
    """The page the dashboard serves: scripts from the server, data polled every ``refresh_s`` seconds."""
    return _page(title, '<script src="plotly.min.js"></script>\n<script src="dashboard.js"></script>',
                 {"refresh_ms": int(refresh_s * 1000), "window_s": window_s})


def frozen_page(title: str, data: dict[str, Any]) -> str:
    """A self-contained page: plotly.js, the script and ``data`` inline, for a file that opens anywhere."""
    data_js = json.dumps(data).replace("</", "<\\/")  # no "</script>" inside a script
    scripts = (f"<script>{plotly_js().read_text()}</script>\n<script>window.SESSIONREC_DATA = {data_js};</script>\n"
               f"<script>{dashboard_js()}</script>")
    return _page(title, scripts, {})


def _page(title: str, scripts: str, options: dict[str, Any]) -> str:
    template = (STATIC / "dashboard.html").read_text()
    return (template.replace("{{title}}", html.escape(title)).replace("{{options}}", html.escape(json.dumps(options)))
            .replace("{{scripts}}", scripts))
