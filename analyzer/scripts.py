"""Sales scripts: stages the manager must perform and objections the client may raise.

A script is a YAML file validated into :class:`Script` on load. Errors name the file and the
dotted path of the field and say what is allowed. Scripts are found by id in the script library
(``scripts_library/`` and any extra folders in settings) or by path.

YAML is read with limits (:func:`load_yaml`): nesting deeper than ``MAX_YAML_DEPTH`` and more than
``MAX_YAML_VALUES`` values, each use of an alias counted, are refused before anything is built or
validated, so a document nested thousands deep or aliases nested in aliases ("billion laughs")
cost nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from analyzer.errors import ScriptNotFoundError, ScriptValidationError

STANDARD_STAGES = (
    "greeting",
    "introduction",
    "time_check",
    "needs_discovery",
    "presentation",
    "next_step",
    "farewell",
)
STANDARD_OBJECTIONS = (
    "price",
    "think_it_over",
    "no_time",
    "have_supplier",
    "send_offer",
    "no_need",
    "not_decision_maker",
    "no_budget",
)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "scripts_library"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _phrases(value: list[str]) -> list[str]:
    cleaned = [p.strip() for p in value if isinstance(p, str) and p.strip()]
    if len(cleaned) != len(value):
        raise ValueError("phrasings must be non-empty strings")
    return cleaned


class Position(_Model):
    """Where in the call a stage must happen. Any limits given must all hold."""

    first_seconds: float | None = Field(None, gt=0, description="within the first N seconds")
    first_turns: int | None = Field(None, gt=0, description="within the manager's first N utterances")
    last_seconds: float | None = Field(None, gt=0, description="within the last N seconds")
    last_share: float | None = Field(None, gt=0, le=1, description="within the last share of the call, 0..1")


class StagePart(_Model):
    """One thing a stage must contain; all parts must occur close together."""

    name: str
    phrasings: list[str] = Field(min_length=1)

    _clean = field_validator("phrasings")(_phrases)


class Stage(_Model):
    id: str
    title: str
    speaker: Literal["manager", "client"] = "manager"
    weight: float = Field(10, ge=0)
    required: bool = True
    phrasings: list[str] = Field(default_factory=list)
    parts: list[StagePart] = Field(default_factory=list)
    position: Position | None = None
    open_questions: int | None = Field(
        None, ge=1, description="also done when the speaker asks this many open questions about the other side"
    )
    forbidden: list[str] = Field(default_factory=list)
    recommended: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"{v!r} is not a valid id: use lower-case letters, digits and _")
        return v

    _clean = field_validator("phrasings", "forbidden", "recommended")(_phrases)

    @model_validator(mode="after")
    def _has_phrasings(self) -> Stage:
        if not self.phrasings and not self.parts and not self.open_questions:
            raise ValueError(
                "a stage needs 'phrasings' (any one matches), 'parts' (all must match) or 'open_questions'"
            )
        return self


class Objection(_Model):
    type: str
    title: str
    weight: float = Field(10, ge=0)
    client_phrasings: list[str] = Field(min_length=1)
    not_phrasings: list[str] = Field(
        default_factory=list, description="look-alike client phrasings that are not this objection"
    )
    handling_phrasings: list[str] = Field(default_factory=list)
    recommended: list[str] = Field(default_factory=list)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"{v!r} is not a valid type: use lower-case letters, digits and _")
        return v

    _clean = field_validator("client_phrasings", "not_phrasings", "handling_phrasings", "recommended")(_phrases)


class Handling(_Model):
    """Objection handling phrasings that apply to every objection type."""

    acknowledge: list[str] = Field(default_factory=list)
    clarify: list[str] = Field(default_factory=list)
    argue: list[str] = Field(default_factory=list)
    give_up: list[str] = Field(default_factory=list)

    _clean = field_validator("acknowledge", "clarify", "argue", "give_up")(_phrases)


class Example(_Model):
    """A client utterance a reviewer decided: the objection type it raises, or ``none`` (learned from reviews)."""

    text: str = Field(min_length=1)
    label: str = Field(description="an objection type of the script, or none")
    context: str = Field("", description="the manager's turn before it")


class ResponseExample(_Model):
    """A manager's answer to an objection a reviewer decided: handled or not (learned from reviews)."""

    objection_type: str
    objection: str = ""
    response: str = Field(min_length=1)
    handled: bool


class Script(_Model):
    id: str
    version: str
    language: str = Field(min_length=2)
    title: str
    description: str = ""
    stages: list[Stage] = Field(min_length=1)
    objections: list[Objection] = Field(default_factory=list)
    handling: Handling = Handling()
    fillers: list[str] = Field(default_factory=list)
    stop_words: list[str] = Field(default_factory=list, description="words the script forbids")
    vocabulary: list[str] = Field(
        default_factory=list, description="company, product and domain words passed to the recogniser"
    )
    violation_penalty: float = Field(5, ge=0, le=100)
    examples: list[Example] = Field(default_factory=list, description="client utterances reviewers decided: "
                                    "they train the script's objection detector beside its phrasings")
    responses: list[ResponseExample] = Field(default_factory=list, description="answers to objections reviewers "
                                             "decided: they train the script's handling model")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v

    _clean = field_validator("fillers", "stop_words", "vocabulary")(_phrases)

    @model_validator(mode="after")
    def _unique(self) -> Script:
        for kind, ids in (("stage id", [s.id for s in self.stages]), ("objection type", [o.type for o in self.objections])):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind}: {', '.join(dupes)}")
        types = {o.type for o in self.objections}
        for what, found in (("examples", {e.label for e in self.examples} - types - {"none"}),
                            ("responses", {r.objection_type for r in self.responses} - types)):
            if found:
                raise ValueError(f"{what} name objection types the script does not have: {', '.join(sorted(found))}; "
                                 f"types: {', '.join(sorted(types)) or 'none'}")
        return self

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(f"no stage {stage_id!r}; stages: {', '.join(s.id for s in self.stages)}")

    def objection(self, type_: str) -> Objection:
        for o in self.objections:
            if o.type == type_:
                return o
        raise KeyError(f"no objection {type_!r}; types: {', '.join(o.type for o in self.objections)}")


def _describe(error: Any, model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        parent = _model_at(model, error["loc"][:-1])
        if parent is not None:
            msg += f"; allowed fields: {', '.join(parent.model_fields)}"
    elif error["type"] == "missing":
        msg = "field required"
    return f"{loc}: {msg}" if loc else msg


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or ()
        candidates = [ann, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def parse_script(data: Any, *, source: str = "<script>") -> Script:
    """Validate a parsed YAML/JSON document into a :class:`Script`."""
    if not isinstance(data, dict):
        raise ScriptValidationError(f"{source}: a script must be a mapping with id, version, stages...", source=source)
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": _describe(e, Script)} for e in exc.errors()]
        lines = "\n".join(f"  - {e['message']}" for e in errors)
        raise ScriptValidationError(f"{source}: invalid script:\n{lines}", source=source, errors=errors) from None


MAX_YAML_DEPTH = 32
"""Nesting a script's YAML may have; a script itself nests seven deep (stages, parts, phrasings)."""
MAX_YAML_VALUES = 100_000
"""Values (mappings, lists, scalars) a script's YAML may hold, each use of an alias counted; a script has a few thousand."""


class YamlLimitError(yaml.MarkedYAMLError):
    """A YAML document nested deeper or holding more values than a script can (the mark: where)."""


class ScriptLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the limits above. Nesting is checked while composing (the composer
    recurses once a level); the values reachable through aliases are counted on the composed nodes,
    before the constructor or validation would walk every copy."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlLimitError(problem=f"is nested deeper than {MAX_YAML_DEPTH} levels (a script nests about 7)",
                                     problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _check_values(node)
        return node


def _check_values(root: yaml.Node) -> None:
    """Walk the nodes as the constructor would, an alias's node once per use; stop past the limits.
    Counted when pushed, so the walk never holds more than MAX_YAML_VALUES nodes."""
    count = 1
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            continue
        if children and depth >= MAX_YAML_DEPTH:
            raise YamlLimitError(problem=f"is nested deeper than {MAX_YAML_DEPTH} levels through aliases",
                                 problem_mark=node.start_mark)
        count += len(children)
        if count > MAX_YAML_VALUES:
            raise YamlLimitError(problem=f"holds more than {MAX_YAML_VALUES:,} values, each use of an alias (*name) counted; "
                                 "a script has a few thousand: write lists out rather than as aliases of aliases")
        stack.extend((child, depth + 1) for child in children)


def load_yaml(text: str) -> Any:
    """YAML text to plain Python values (safe types only) within the limits above; raises yaml.YAMLError."""
    return yaml.load(text, Loader=ScriptLoader)  # a SafeLoader: no Python objects


def compose_yaml(text: str) -> yaml.Node | None:
    """YAML text to its node tree (with line marks) within the limits above; raises yaml.YAMLError."""
    return yaml.compose(text, Loader=ScriptLoader)


def parse_script_text(text: str, *, source: str = "<script>") -> Script:
    try:
        data = load_yaml(text)
    except YamlLimitError as exc:
        where = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ScriptValidationError(f"{source}{where}: the YAML {exc.problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise ScriptValidationError(f"{source}: not valid YAML: {exc}", source=source) from None
    return parse_script(data, source=source)


@lru_cache(maxsize=64)
def _load_path(path: Path, mtime: float) -> Script:
    return parse_script_text(path.read_text(encoding="utf-8"), source=str(path))


def load_script_file(path: str | Path) -> Script:
    p = Path(path)
    if not p.is_file():
        raise ScriptNotFoundError(f"script file {p} does not exist")
    return _load_path(p.resolve(), p.stat().st_mtime)


def script_dirs(extra: list[Path] | None = None) -> list[Path]:
    return [*(extra or []), BUNDLED_DIR]


def list_scripts(extra_dirs: list[Path] | None = None, *, skip_invalid: bool = False) -> list[Script]:
    """Every valid script in the library folders (invalid files raise, or are left out with ``skip_invalid``)."""
    seen: dict[str, Script] = {}
    for d in script_dirs(extra_dirs):
        for f in sorted(d.glob("*.y*ml")) if d.is_dir() else []:
            try:
                s = load_script_file(f)
            except ScriptValidationError:
                if skip_invalid:
                    continue
                raise
            seen.setdefault(s.id, s)
    return list(seen.values())


def load_script(ref: str | Path, *, extra_dirs: list[Path] | None = None) -> Script:
    """A script by id from the library, or by path to a YAML file."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return load_script_file(p)
    for d in script_dirs(extra_dirs):
        for ext in (".yaml", ".yml"):
            f = d / f"{ref}{ext}"
            if f.is_file():
                return load_script_file(f)
    available = ", ".join(s.id for s in list_scripts(extra_dirs)) or "none"
    raise ScriptNotFoundError(f"no script {str(ref)!r} in the library; available: {available}")


DEFAULT_SCRIPTS = {"ru": "ru_b2b_outbound", "en": "en_b2b_outbound"}


def script_languages(extra_dirs: list[Path] | None = None) -> set[str]:
    """The languages a call can be scored in: those with a default script or a valid script in the
    library (an invalid file is left out here: it must not stop every call's language detection)."""
    return set(DEFAULT_SCRIPTS) | {s.language for s in list_scripts(extra_dirs, skip_invalid=True)}


def default_script(language: str, *, extra_dirs: list[Path] | None = None) -> Script:
    ref = DEFAULT_SCRIPTS.get(language)
    if ref is None:
        for s in list_scripts(extra_dirs):
            if s.language == language:
                return s
        raise ScriptNotFoundError(
            f"no script for language {language!r}; pass --script ID|PATH (languages with a default: "
            f"{', '.join(DEFAULT_SCRIPTS)})"
        )
    return load_script(ref, extra_dirs=extra_dirs)
