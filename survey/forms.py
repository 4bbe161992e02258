"""Forms built from a questionnaire through one map of question type -> field."""

from __future__ import annotations

import re
import unicodedata

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, TextAreaField
from wtforms.validators import StopValidation, ValidationError

from analysis.questionnaire import Question, Questionnaire

# Every message a respondent can see, in one table (Vietnamese source, translated by Babel).
MESSAGES = {
    "required": _l("Vui lòng chọn một câu trả lời cho câu hỏi này."),
    "required_text": _l("Vui lòng trả lời câu hỏi này."),
    "required_multiple": _l("Vui lòng chọn ít nhất một lựa chọn."),
    "invalid_choice": _l("Lựa chọn không hợp lệ."),
    "too_long": _l("Câu trả lời dài quá %(max)d ký tự."),
}


class InvalidSubmission(Exception):
    """Something no browser rendering our page could send (tampering or a stale form)."""


# A code as our page writes it: ASCII digits, no sign, space or leading zero. int() alone
# would also take "+4", " 4 ", "04", "4_0", full-width "４" and Arabic-Indic "٤".
CODE = re.compile(r"0|[1-9][0-9]{0,8}")


def parse_code(name: str, raw: str) -> int:
    if not CODE.fullmatch(raw):
        raise InvalidSubmission(f"{name}: {raw!r} is not a code")
    return int(raw)


class CodeField(Field):
    """One code from a fixed list; a value outside the list is an invalid submission."""

    def __init__(self, codes, **kwargs):
        super().__init__(**kwargs)
        self.codes = frozenset(codes)

    def process_formdata(self, valuelist):
        if not valuelist or valuelist[0] == "":
            self.data = None
            return
        if len(valuelist) > 1:
            raise InvalidSubmission(f"{self.name}: several values for a single choice")
        self.data = parse_code(self.name, valuelist[0])

    def pre_validate(self, form):
        if self.data is not None and self.data not in self.codes:
            raise InvalidSubmission(f"{self.name}: {self.data} is not one of its codes")


class CodesField(CodeField):
    """Several codes from a fixed list (multiple choice): each box ticked at most once."""

    def process_formdata(self, valuelist):
        codes = [parse_code(self.name, value) for value in valuelist if value != ""]
        if len(set(codes)) != len(codes):
            raise InvalidSubmission(f"{self.name}: a box sent twice")
        self.data = sorted(codes)

    def pre_validate(self, form):
        if any(code not in self.codes for code in self.data or ()):
            raise InvalidSubmission(f"{self.name}: a code outside its options")


class TextField(TextAreaField):
    """A free text answer, one value, NFC-normalised and stripped."""

    def process_formdata(self, valuelist):
        if len(valuelist) > 1:
            raise InvalidSubmission(f"{self.name}: several values for a text")
        raw = valuelist[0] if valuelist else ""
        # Normalise so that the same words typed on different keyboards compare equal.
        self.data = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip() or None


class WhenShown:
    """Validates a question only when the skip logic shows it; hidden answers are dropped."""

    def __init__(self, questionnaire: Questionnaire, question: Question):
        self.questionnaire = questionnaire
        self.question = question

    def __call__(self, form, field: Field):
        if not self.questionnaire.is_shown(self.question.id, form.raw_answers()):
            field.errors[:] = []
            raise StopValidation()
        empty = field.data in (None, [], "")
        if empty and self.question.required:
            kind = {"text": "required_text", "multiple": "required_multiple"}
            raise StopValidation(str(MESSAGES[kind.get(self.question.type, "required")]))
        is_text = self.question.type == "text"
        if is_text and field.data and len(field.data) > self.question.max_length:
            raise ValidationError(str(MESSAGES["too_long"]) % {"max": self.question.max_length})


def _code_field(questionnaire, question):
    return CodeField(question.codes, validators=[WhenShown(questionnaire, question)])


def _codes_field(questionnaire, question):
    return CodesField(question.codes, validators=[WhenShown(questionnaire, question)])


def _text_field(questionnaire, question):
    return TextField(validators=[WhenShown(questionnaire, question)])


# The one map from question type to the field that collects it.
FIELD_FOR_TYPE = {
    "likert5": _code_field,
    "single": _code_field,
    "yesno": _code_field,
    "multiple": _codes_field,
    "text": _text_field,
}


class ResponseForm(FlaskForm):
    """Base of every generated questionnaire form."""

    questionnaire: Questionnaire
    # Signed time the page was served: how long the respondent took (integrity checks).
    started = HiddenField()
    # Random key per page view: a POST retried by a flaky connection is stored once.
    submission_key = HiddenField()

    def raw_answers(self) -> dict:
        # Computed once: every question's visibility check reads it during validation.
        if getattr(self, "_raw_answers", None) is None:
            self._raw_answers = {qid: self[qid].data for qid in self.questionnaire.questions}
        return self._raw_answers

    def answers(self) -> dict:
        """Answers to the questions the skip logic shows; blanks and hidden ones left out."""
        raw = self.raw_answers()
        return {
            qid: value
            for qid, value in raw.items()
            if value not in (None, [], "") and self.questionnaire.is_shown(qid, raw)
        }

    def known_fields(self) -> set[str]:
        return set(self._fields)

    def multi_valued_fields(self) -> set[str]:
        """The fields a browser may send several times (a multiple-choice question's boxes)."""
        return {name for name, field in self._fields.items() if isinstance(field, CodesField)}


class _Value:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class BlankForm:
    """A questionnaire's form as first served: no answers, no errors, a signed stamp and key.

    What the templates read of a form, without binding WTForms' ~30 fields on the busiest
    page (GET /r/<token>); a POST is read by the questionnaire's ResponseForm.
    """

    def __init__(self, questionnaire: Questionnaire, started: str, submission_key: str):
        self.questionnaire = questionnaire
        self.started = _Value(started)
        self.submission_key = _Value(submission_key)
        self.errors: dict = {}

    def raw_answers(self) -> dict:
        return dict.fromkeys(self.questionnaire.questions)

    def answers(self) -> dict:
        return {}


_FORM_CLASSES: dict[tuple[str, int, str], type[ResponseForm]] = {}


def form_class(questionnaire: Questionnaire) -> type[ResponseForm]:
    """A form class with one field per question, built once per questionnaire version."""
    key = (questionnaire.id, questionnaire.version, questionnaire.source)
    if key not in _FORM_CLASSES:
        _FORM_CLASSES[key] = _build_form_class(questionnaire)
    return _FORM_CLASSES[key]


def _build_form_class(questionnaire: Questionnaire) -> type[ResponseForm]:
    attrs = {"questionnaire": questionnaire}
    for question in questionnaire.questions.values():
        attrs[question.id] = FIELD_FOR_TYPE[question.type](questionnaire, question)
    return type(f"Form_{questionnaire.id}_v{questionnaire.version}", (ResponseForm,), attrs)
