"""The questionnaire model: load and validate a questionnaire file into frozen dataclasses.

The one reader of ``questionnaires/*.yaml`` (format in ``questionnaires/README.md``), used by
the web application, the analysis library, its command lines and the reports. A plain
library: PyYAML in, dataclasses out, no web code. Any fault raises :class:`QuestionnaireError`
whose message names the file, the path inside it and what is wrong.

What code needs to know about a form is declared in the file, never guessed from ids: the
file's ``kind`` (the full SIPAS service form, or the counter quick form) and the ``role`` of
the special questions (the overall rating, the reasons for it, the service field).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

QUESTION_TYPES = ("likert5", "single", "multiple", "yesno", "text")
LANGUAGES = ("vi", "en")
NOT_APPLICABLE = 0
DEFAULT_MAX_LENGTH = 500
MAX_MAX_LENGTH = 2000

# Kinds of questionnaire: what the reports and analysis do with them.
SIPAS = "sipas"  # criteria -> element -> overall (SIPAS) indices
COUNTER_QUICK = "counter-quick"  # an overall rating 3/2/1, its reasons, a few quick criteria
# Roles of special questions: the question types they may have.
OVERALL_RATING = "overall_rating"  # 3 very satisfied, 2 satisfied, 1 not satisfied
REASONS = "reasons"  # why not satisfied (multiple choice)
SERVICE_FIELD = "service_field"  # the procedure's field: a post-stratification variable
ROLE_TYPES = {OVERALL_RATING: ("single",), REASONS: ("multiple",), SERVICE_FIELD: ("single",)}
OVERALL_RATING_CODES = frozenset({1, 2, 3})
# integrity.min_seconds: the fastest plausible completion; faster responses are flagged.
MAX_MIN_SECONDS = 3600


@dataclass(frozen=True)
class Kind:
    """What a kind of questionnaire must hold: roles required (exactly one each), roles
    allowed (at most one each), and whether it needs likert5 criteria."""

    required: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    needs_criteria: bool = False


KINDS = {
    SIPAS: Kind(allowed=(SERVICE_FIELD,), needs_criteria=True),
    COUNTER_QUICK: Kind(required=(OVERALL_RATING,), allowed=(OVERALL_RATING, REASONS,
                                                              SERVICE_FIELD)),
}
DEFAULT_KIND = SIPAS

# fullmatch, not match with "$", which also accepts a trailing newline.
_ID = re.compile(r"[a-z0-9_]+")
_FILE_ID = re.compile(r"[a-z0-9-]+")
_ELEMENT_ID = re.compile(r"[A-Za-z0-9_]+")


class QuestionnaireError(ValueError):
    """A questionnaire file is invalid; the message names the file, the place and the fault."""


@dataclass(frozen=True)
class Text:
    vi: str
    en: str

    def get(self, locale: str) -> str:
        return self.en if locale == "en" else self.vi


@dataclass(frozen=True)
class Option:
    code: int
    text: Text


@dataclass(frozen=True)
class Condition:
    """Shown only when the answer to `question` is one of `values`."""

    question: str
    values: tuple[int, ...]

    def holds(self, answers: dict) -> bool:
        given = answers.get(self.question)
        if isinstance(given, (list, tuple, set, frozenset)):
            return any(value in self.values for value in given)
        return given in self.values


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    text: Text
    options: tuple[Option, ...] = ()
    help: Text | None = None
    required: bool = False
    not_applicable: bool = False
    max_length: int = DEFAULT_MAX_LENGTH
    element: str | None = None
    show_if: Condition | None = None
    role: str | None = None

    @property
    def codes(self) -> frozenset[int]:
        return frozenset(option.code for option in self.options)

    @property
    def is_criterion(self) -> bool:
        return self.type == "likert5" and self.element is not None


@dataclass(frozen=True)
class Element:
    id: str
    title: Text


@dataclass(frozen=True)
class Section:
    id: str
    title: Text
    questions: tuple[Question, ...]
    element: str | None = None
    show_if: Condition | None = None
    help: Text | None = None
    # Shown folded under its title (a <details> element): an optional part that must not
    # stand between the respondent and the submit button. Its questions are all optional.
    collapsed: bool = False


@dataclass(frozen=True)
class Questionnaire:
    id: str
    version: int
    title: Text
    sections: tuple[Section, ...]
    elements: tuple[Element, ...] = ()
    description: Text | None = None
    kind: str = DEFAULT_KIND
    # The fastest plausible completion in seconds (the file's integrity.min_seconds); None:
    # the application's default applies.
    min_seconds: int | None = None
    source: str = field(default="", compare=False)

    @cached_property
    def questions(self) -> dict[str, Question]:
        return {q.id: q for section in self.sections for q in section.questions}

    @cached_property
    def numbers(self) -> dict[str, int]:
        """Question numbers, the same on the web page and on paper."""
        return {qid: i for i, qid in enumerate(self.questions, start=1)}

    @cached_property
    def section_of(self) -> dict[str, Section]:
        return {q.id: section for section in self.sections for q in section.questions}

    @cached_property
    def roles(self) -> dict[str, Question]:
        """The special questions by role (``OVERALL_RATING``, ``REASONS``, ``SERVICE_FIELD``)."""
        return {q.role: q for q in self.questions.values() if q.role is not None}

    @property
    def criteria(self) -> list[Question]:
        return [q for q in self.questions.values() if q.is_criterion]

    def is_shown(self, question_id: str, answers: dict) -> bool:
        """Whether the skip logic shows this question given the (earlier) answers."""
        question = self.questions[question_id]
        section = self.section_of[question_id]
        for condition in (section.show_if, question.show_if):
            if condition is None:
                continue
            if not self.is_shown(condition.question, answers) or not condition.holds(answers):
                return False
        return True


def likert_options(not_applicable: bool) -> tuple[Option, ...]:
    """The five-level scale, shared by every likert5 question (labels are not repeated in files)."""
    options = (
        Option(1, Text("Rất không hài lòng", "Very dissatisfied")),
        Option(2, Text("Không hài lòng", "Dissatisfied")),
        Option(3, Text("Bình thường", "Neutral")),
        Option(4, Text("Hài lòng", "Satisfied")),
        Option(5, Text("Rất hài lòng", "Very satisfied")),
    )
    if not_applicable:
        options += (Option(NOT_APPLICABLE, Text("Không áp dụng", "Not applicable")),)
    return options


YESNO_OPTIONS = (Option(1, Text("Có", "Yes")), Option(2, Text("Không", "No")))


class _Reader:
    """Walks one parsed file, keeping the path for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise QuestionnaireError(f"{self.source}: {path or '(top level)'}: {message}")

    def mapping(self, value, path, required=(), optional=()):
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
        for key in required:
            if key not in value:
                self.fail(path, f"missing required key '{key}'")
        unknown = set(value) - set(required) - set(optional)
        if unknown:
            self.fail(path, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        return value

    def text(self, value, path) -> Text:
        self.mapping(value, path, required=LANGUAGES)
        for lang in LANGUAGES:
            item = value[lang]
            if not isinstance(item, str) or not item.strip():
                self.fail(f"{path}.{lang}", "expected a non-empty string")
            if not unicodedata.is_normalized("NFC", item):
                self.fail(f"{path}.{lang}", "text is not in Unicode NFC form")
        return Text(value["vi"].strip(), value["en"].strip())

    def ident(self, value, path, pattern=_ID) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(path, f"invalid id {value!r} (allowed: {pattern.pattern})")
        return value

    def choice(self, value, path, allowed, what) -> str:
        if not isinstance(value, str) or value not in allowed:
            self.fail(path, f"unknown {what} {value!r} (one of {', '.join(allowed)})")
        return value

    def boolean(self, value, path) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}")
        return value

    def integer(self, value, path, minimum=None, maximum=None) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            self.fail(path, f"{value} is out of range [{minimum}, {maximum}]")
        return value

    def listing(self, value, path, allow_empty=False) -> list:
        if not isinstance(value, list) or (not value and not allow_empty):
            self.fail(path, "expected a non-empty list")
        return value


def _condition(reader: _Reader, value, path, earlier: dict[str, Question]) -> Condition:
    reader.mapping(value, path, required=("question", "in"))
    target = reader.ident(value["question"], f"{path}.question")
    if target not in earlier:
        reader.fail(f"{path}.question", f"refers to {target!r}, which is not an earlier question")
    values = reader.listing(value["in"], f"{path}.in")
    codes = tuple(reader.integer(v, f"{path}.in[{i}]") for i, v in enumerate(values))
    allowed = earlier[target].codes
    for i, code in enumerate(codes):
        if code not in allowed:
            reader.fail(f"{path}.in[{i}]", f"{code} is not a code of question {target!r}")
    return Condition(target, codes)


def _question(reader, value, path, element, earlier, kind: Kind) -> Question:
    optional = ("help", "required", "not_applicable", "show_if", "options", "max_length", "role")
    reader.mapping(value, path, required=("id", "type", "text"), optional=optional)
    qid = reader.ident(value["id"], f"{path}.id")
    if qid in earlier:
        reader.fail(f"{path}.id", f"duplicate question id {qid!r}")
    qtype = reader.choice(value["type"], f"{path}.type", QUESTION_TYPES, "type")

    def only(key, types):
        if key in value and qtype not in types:
            reader.fail(f"{path}.{key}", f"not allowed for type {qtype}")

    only("options", ("single", "multiple"))
    only("not_applicable", ("likert5",))
    only("max_length", ("text",))
    not_applicable = reader.boolean(value.get("not_applicable", False), f"{path}.not_applicable")
    if qtype == "likert5":
        options = likert_options(not_applicable)
    elif qtype == "yesno":
        options = YESNO_OPTIONS
    elif qtype in ("single", "multiple"):
        if "options" not in value:
            reader.fail(path, f"missing required key 'options' for type {qtype}")
        options = []
        for i, raw in enumerate(reader.listing(value["options"], f"{path}.options")):
            opath = f"{path}.options[{i}]"
            reader.mapping(raw, opath, required=("code", "text"))
            code = reader.integer(raw["code"], f"{opath}.code", minimum=0)
            if code in {o.code for o in options}:
                reader.fail(f"{opath}.code", f"duplicate code {code}")
            options.append(Option(code, reader.text(raw["text"], f"{opath}.text")))
        options = tuple(options)
    else:
        options = ()
    role = None
    if "role" in value:
        role = _role(reader, value["role"], f"{path}.role", qtype, options, kind)
    return Question(
        id=qid,
        type=qtype,
        text=reader.text(value["text"], f"{path}.text"),
        options=options,
        help=reader.text(value["help"], f"{path}.help") if "help" in value else None,
        required=reader.boolean(value.get("required", False), f"{path}.required"),
        not_applicable=not_applicable,
        max_length=reader.integer(
            value.get("max_length", DEFAULT_MAX_LENGTH), f"{path}.max_length", 1, MAX_MAX_LENGTH
        ),
        element=element if qtype == "likert5" else None,
        show_if=_condition(reader, value["show_if"], f"{path}.show_if", earlier)
        if "show_if" in value
        else None,
        role=role,
    )


def _role(reader, value, path, qtype, options, kind: Kind) -> str:
    role = reader.choice(value, path, tuple(ROLE_TYPES), "role")
    if role not in kind.allowed:
        allowed = ", ".join(kind.allowed) or "none"
        reader.fail(path, f"role {role} is not used by this kind of questionnaire "
                          f"(allowed: {allowed})")
    if qtype not in ROLE_TYPES[role]:
        reader.fail(path, f"role {role} needs a question of type {' or '.join(ROLE_TYPES[role])}, "
                          f"not {qtype}")
    if role == OVERALL_RATING and {o.code for o in options} != OVERALL_RATING_CODES:
        reader.fail(path, "role overall_rating needs exactly the codes 3 (very satisfied), "
                          "2 (satisfied) and 1 (not satisfied)")
    return role


def parse(data, source: str = "<string>") -> Questionnaire:
    """Validate parsed YAML and build the questionnaire; raise QuestionnaireError on any fault."""
    reader = _Reader(source)
    top = ("id", "version", "title", "sections")
    reader.mapping(data, "", required=top,
                   optional=("description", "elements", "kind", "integrity"))
    kind_name = reader.choice(data.get("kind", DEFAULT_KIND), "kind", tuple(KINDS), "kind")
    kind = KINDS[kind_name]
    elements = []
    for i, raw in enumerate(reader.listing(data.get("elements", []), "elements", allow_empty=True)):
        reader.mapping(raw, f"elements[{i}]", required=("id", "title"))
        eid = reader.ident(raw["id"], f"elements[{i}].id", _ELEMENT_ID)
        if eid in {e.id for e in elements}:
            reader.fail(f"elements[{i}].id", f"duplicate element id {eid!r}")
        elements.append(Element(eid, reader.text(raw["title"], f"elements[{i}].title")))
    element_ids = {e.id for e in elements}

    earlier: dict[str, Question] = {}
    role_paths: dict[str, str] = {}
    sections = []
    for i, raw in enumerate(reader.listing(data["sections"], "sections")):
        path = f"sections[{i}]"
        reader.mapping(raw, path, required=("id", "title", "questions"),
                       optional=("element", "show_if", "help", "collapsed"))
        sid = reader.ident(raw["id"], f"{path}.id")
        if sid in {s.id for s in sections}:
            reader.fail(f"{path}.id", f"duplicate section id {sid!r}")
        element = None
        if "element" in raw:
            element = reader.ident(raw["element"], f"{path}.element", _ELEMENT_ID)
            if element not in element_ids:
                reader.fail(f"{path}.element", f"{element!r} is not one of the file's elements")
        show_if = (
            _condition(reader, raw["show_if"], f"{path}.show_if", earlier)
            if "show_if" in raw
            else None
        )
        questions = []
        for j, rawq in enumerate(reader.listing(raw["questions"], f"{path}.questions")):
            qpath = f"{path}.questions[{j}]"
            question = _question(reader, rawq, qpath, element, earlier, kind)
            if question.role is not None:
                if question.role in role_paths:
                    reader.fail(f"{qpath}.role", f"role {question.role} is already given to "
                                                 f"{role_paths[question.role]}")
                role_paths[question.role] = qpath
            earlier[question.id] = question
            questions.append(question)
        if element is not None and not any(q.type == "likert5" for q in questions):
            reader.fail(f"{path}.element", "a section with an element needs likert5 questions")
        collapsed = reader.boolean(raw.get("collapsed", False), f"{path}.collapsed")
        if collapsed and show_if is None:
            # A folded part must not hide a question everyone has to answer; one shown only
            # under a condition may require answers when shown (the page opens it with the
            # error, and survey.js opens it when the condition holds).
            for j, question in enumerate(questions):
                if question.required:
                    reader.fail(f"{path}.questions[{j}].required",
                                "a collapsed section without show_if holds optional "
                                "questions only")
        sections.append(
            Section(sid, reader.text(raw["title"], f"{path}.title"), tuple(questions),
                    element, show_if,
                    reader.text(raw["help"], f"{path}.help") if "help" in raw else None,
                    collapsed)
        )
    for role in kind.required:
        if role not in role_paths:
            reader.fail("kind", f"a {kind_name} questionnaire needs exactly one question with "
                                f"role {role}")
    if kind.needs_criteria and not any(q.is_criterion for q in earlier.values()):
        reader.fail("kind", f"a {kind_name} questionnaire needs likert5 criteria "
                            "(in a section with an element)")
    return Questionnaire(
        id=reader.ident(data["id"], "id", _FILE_ID),
        version=reader.integer(data["version"], "version", minimum=1),
        title=reader.text(data["title"], "title"),
        sections=tuple(sections),
        elements=tuple(elements),
        description=reader.text(data["description"], "description")
        if "description" in data
        else None,
        kind=kind_name,
        min_seconds=_integrity(reader, data["integrity"]) if "integrity" in data else None,
        source=source,
    )


def _integrity(reader: _Reader, value) -> int:
    """The file's integrity settings: ``{min_seconds: N}``, 1 <= N <= 3600."""
    reader.mapping(value, "integrity", required=("min_seconds",))
    return reader.integer(value["min_seconds"], "integrity.min_seconds", 1, MAX_MIN_SECONDS)


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep=False):
    seen = []
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.append(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _mapping_without_duplicates)


def load_file(path: str | Path) -> Questionnaire:
    """Read and validate one questionnaire file (UTF-8, a byte-order mark is accepted)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = yaml.load(f, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise QuestionnaireError(f"{path}: cannot be read: {exc}") from exc
    return parse(data, str(path))
