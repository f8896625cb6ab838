"""Schemathesis hooks (``schemathesis.toml``): the fuzzer acts as the first administrator.

Its token is minted in the database the server uses (``CALLQA_DATABASE_URL``), again whenever the
server answers 401: the fuzzer may give that administrator a new password, which signs them out,
and it may lock the sign-in of the address it sends from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from sqlalchemy import select

from api.core.config import get_service_settings
from api.core.db import Database
from api.core.security import new_token, token_digest
from api.models import ApiToken, Role, User


@schemathesis.auth()
class FirstAdministrator:
    def get(self, case: Any, context: Any) -> str:
        database = Database(get_service_settings())
        try:
            with database.sessions() as session:
                admin = session.scalar(select(User).where(User.role == Role.admin, User.active.is_(True)).order_by(User.id))
                assert admin is not None, "no active administrator in the database"
                token = new_token()
                session.add(ApiToken(user_id=admin.id, token_hash=token_digest(token),
                                     expires_at=datetime.now(UTC) + timedelta(hours=1)))
                session.commit()
                return token
        finally:
            database.dispose()

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
