"""ASGI entry point for servers: ``uvicorn api.main:app`` (settings from CALLQA_* variables)."""

from api.app import create_app

app = create_app()
