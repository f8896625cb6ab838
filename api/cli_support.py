"""What the service's commands share (:mod:`api.cli`, :mod:`api.crm.cli`): settings with a command's
options over them, the first start's bootstrap told to the person at the terminal, a session on the
migrated database, database URLs fit for a log.

The service is imported when a command runs, not when the command line starts, so that
``callqa analyze`` and ``callqa score`` load no database layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from api.core.config import ServiceSettings

console = Console(stderr=True)
"""Where the commands tell people what happens (standard error: standard output is for results)."""


def service_settings(**overrides: Any) -> ServiceSettings:
    """The service's settings (CALLQA_* variables), with the options a command was given over them."""
    from api.core.config import get_service_settings

    return get_service_settings(**{k: v for k, v in overrides.items() if v is not None})


def prepare_database(settings: ServiceSettings) -> None:
    """Migrate and seed the database (:func:`api.bootstrap.bootstrap`); a first administrator's
    generated password is printed once; a refused setting ends the command with status 2."""
    from api.bootstrap import bootstrap as bootstrap_database
    from api.core.errors import ServiceError

    try:
        password = bootstrap_database(settings)
    except ServiceError as e:  # e.g. CALLQA_ADMIN_PASSWORD refused by the password policy
        console.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    if password:
        console.print(
            f"[bold]First start: created the administrator '{settings.admin_username}' with password [green]{password}[/green]"
            " (shown once; set CALLQA_ADMIN_PASSWORD to choose it).[/bold]"
        )


@contextmanager
def database_session() -> Iterator[tuple[ServiceSettings, Session]]:
    """The settings and a database session on the configured database, migrated and seeded first; closed after."""
    from api.core.db import Database

    settings = service_settings()
    prepare_database(settings)
    database = Database(settings)
    try:
        with database.sessions() as s:
            yield settings, s
    finally:
        database.dispose()


def safe_url(url: str) -> str:
    """A URL for logs, without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
