"""API schemas of learning from reviews: the examples, and the version learned from them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LearnedExamplePublic(BaseModel):
    kind: str = Field(description="utterance: a client utterance and the objection type it raises (or none); "
                      "response: a manager's answer to an objection and whether it handles it")
    text: str
    context: str = Field(description="the manager's turn before the utterance, or the objection an answer answers")
    label: str = Field(description="the objection type, or none")
    handled: bool | None = None
    call_id: int
    review_id: int


class LearnedVersionPublic(BaseModel):
    script_id: str
    version: str = Field(description="the new version, not active: activate it to score with it")
    examples: int
    calls: int = Field(description="reviewed calls the examples come from")
    labels: dict[str, int] = Field(description="examples per objection type, none, and answers handled or not")
    changes: Any = Field(description="what activating it would change on the calls you may see (a dry-run re-score)")
