"""The audit log: who changed what, before and after. Written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.models import AuditEntry, User


def audit(
    session: Session, *, user: User | None, action: str, entity: str, entity_id: object, before: Any = None, after: Any = None
) -> None:
    session.add(
        AuditEntry(
            user_id=user.id if user else None, action=action, entity=entity, entity_id=str(entity_id), before=before, after=after
        )
    )
