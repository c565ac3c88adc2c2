"""ASGI entry point for process managers (``uvicorn --factory service.asgi:app``): settings from the environment.

``PROVENANCE_CONFIG`` names an optional TOML settings file (``provenance serve --config F --workers N``
hands its file to the workers this way). The factory also applies the connection settings to this
process's :mod:`service.server` protocol, so a worker serving with
``--http service.server:GuardedHttpToolsProtocol`` enforces the configured request-head deadline and
connection cap. Run directly, uvicorn needs the options ``provenance serve`` gives it
(:func:`service.server.uvicorn_options`): ``--http service.server:GuardedHttpToolsProtocol``, and
``--no-proxy-headers`` or ``--forwarded-allow-ips`` set to ``PROVENANCE_TRUSTED_PROXIES`` (uvicorn's
default believes ``X-Forwarded-For`` from 127.0.0.1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from service.app import create_app
from service.ops.logging import configure as configure_logging
from service.server import configure_connections
from service.settings import load_settings

#: Environment variable naming the TOML settings file read by :func:`app`.
CONFIG_ENV = "PROVENANCE_CONFIG"


def app() -> Any:
    config = os.environ.get(CONFIG_ENV)
    settings = load_settings(Path(config) if config else None)
    configure_logging(settings.log_level)  # JSON lines, like `provenance serve` itself
    configure_connections(settings)
    return create_app(settings)
