"""What a fresh database needs before anything serves from it: the newest schema, the bundled
scripts and a first administrator. The commands (:mod:`api.cli`) run it at start; so do the tests,
the benchmarks and the screenshot tool that build a service of their own."""

from __future__ import annotations

from api.auth.service import ensure_admin
from api.core.config import ServiceSettings
from api.core.db import Database, upgrade
from api.scripts.service import seed_builtin_scripts


def bootstrap(settings: ServiceSettings) -> str | None:
    """Migrate the database, seed the bundled scripts, create the first admin. Returns a generated
    admin password to show once (None when an admin existed or the password was set)."""
    upgrade(settings.db_url)
    db = Database(settings)
    try:
        with db.sessions() as session:
            seed_builtin_scripts(session)
            return ensure_admin(session, username=settings.admin_username, password=settings.admin_password)
    finally:
        db.dispose()
