"""ASGI entry point for process managers (``uvicorn --factory service.asgi:app``): settings from the environment."""

from __future__ import annotations

from typing import Any

from service.app import create_app
from service.settings import load_settings


def app() -> Any:
    return create_app(load_settings())
