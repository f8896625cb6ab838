"""Learning from reviews over HTTP: the examples the reviews give, as JSON or a CSV download, and a
new version of the script learned from them (stored, not active). Admins, heads of sales and
quality controllers only; the examples are of the calls each may see."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from api.auth.scope import scope_of
from api.core.exports import CSV_TYPE, csv_bytes, download
from api.core.openapi import errors
from api.deps import STAFF, SessionDep, require
from api.learning import service as learning
from api.learning.schemas import LearnedExamplePublic, LearnedVersionPublic
from api.models import User
from api.scripts.service import script_versions

router = APIRouter(prefix="/api/v1", tags=["scripts"])

_Author = Annotated[User, Depends(require(*STAFF))]


@router.get("/scripts/{script_id}/examples", response_model=list[LearnedExamplePublic],
            summary="What reviewers decided about this script's objections, as examples to learn from",
            description="From the latest review of each objection of the calls scored with the script that you may see: "
            "the client utterance and its type (or none), the manager's answer and whether it handled it. `format=csv` "
            "downloads them (semicolons, UTF-8 with a BOM, for Excel).",
            responses={200: {"content": {"text/csv": {}}}, **errors(404)})
def list_examples(
    session: SessionDep, user: _Author, script_id: str,
    format: Annotated[Literal["json", "csv"], Query(description="json, or a CSV download")] = "json",  # noqa: A002
) -> Any:
    script_versions(session, script_id=script_id)
    rows = learning.reviewed_examples(session, script_id=script_id, scope=scope_of(session, user))
    if format == "json":
        return rows
    table = [["kind", "label", "handled", "text", "context", "call_id", "review_id"],
             *([r["kind"], r["label"], r.get("handled", ""), r["text"], r["context"], r["call_id"], r["review_id"]]
               for r in rows)]
    return download(csv_bytes(table, sep=";"), media_type=CSV_TYPE, filename=f"{script_id}-examples.csv")


@router.post("/scripts/{script_id}/learn", response_model=LearnedVersionPublic, status_code=201, responses=errors(404, 409),
             summary="Learn a new version from the reviews: stored, not active, with what it would change",
             description="Every reviewed objection of the calls scored with this script becomes an example (its utterance "
             "and type, or none; its answer and whether it handled it); a new version (`<version>+learned.N`) is stored "
             "with them and trained, and a dry-run re-score shows what activating it would change on the calls you may "
             "see. Activate it with POST /scripts/{id}/versions/{version}/activate. 409 `nothing_to_learn` when there is "
             "no review, or none since the last learned version.")
def learn(session: SessionDep, actor: _Author, script_id: str) -> LearnedVersionPublic:
    script_versions(session, script_id=script_id)
    learned = learning.learn(session, actor=actor, script_id=script_id)
    return LearnedVersionPublic(script_id=script_id, version=learned.version.version, examples=learned.examples, calls=learned.calls,
                       labels=learned.labels, changes=learned.changes.model_dump(mode="json"))
