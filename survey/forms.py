"""Forms built from a questionnaire through one map of question type -> field."""

from __future__ import annotations

import re
import unicodedata

from flask import current_app, g
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, TextAreaField
from wtforms.validators import StopValidation

from analysis.questionnaire import Question, Questionnaire

from .security import csrf

# Every message a respondent can see, in one table (Vietnamese source, translated by Babel).
MESSAGES = {
    "required": _l("Vui lòng chọn một câu trả lời cho câu hỏi này."),
    "required_text": _l("Vui lòng trả lời câu hỏi này."),
    "required_multiple": _l("Vui lòng chọn ít nhất một lựa chọn."),
    "invalid_choice": _l("Lựa chọn không hợp lệ."),
    "too_long": _l("Câu trả lời dài quá %(max)d ký tự."),
}


# WTForms' own messages on the staff forms (required, too long, not a valid choice…): WTForms
# has no Vietnamese catalogue, so each English message maps to one of ours.
_REQUIRED = _l("Vui lòng điền mục này.")
_CHOICE = _l("Lựa chọn không hợp lệ.")
_NUMBER = _l("Vui lòng nhập một số.")
WTFORMS_MESSAGES = {
    "This field is required.": _REQUIRED,
    "Field cannot be longer than %(max)d character.": _l("Tối đa %(max)d ký tự."),
    "Field cannot be longer than %(max)d characters.": _l("Tối đa %(max)d ký tự."),
    "Field must be at least %(min)d character long.": _l("Cần ít nhất %(min)d ký tự."),
    "Field must be at least %(min)d characters long.": _l("Cần ít nhất %(min)d ký tự."),
    "Field must be between %(min)d and %(max)d characters long.":
        _l("Cần từ %(min)d đến %(max)d ký tự."),
    "Number must be at least %(min)s.": _l("Số phải từ %(min)s trở lên."),
    "Number must be at most %(max)s.": _l("Số không được lớn hơn %(max)s."),
    "Number must be between %(min)s and %(max)s.": _l("Số phải từ %(min)s đến %(max)s."),
    "Not a valid choice.": _CHOICE,
    "Invalid Choice: could not coerce.": _CHOICE,
    "Choices cannot be None.": _CHOICE,
    "Invalid choice(s): one or more data inputs could not be coerced.": _CHOICE,
    "'%(value)s' is not a valid choice for this field.": _CHOICE,
    "'%(value)s' are not valid choices for this field.": _CHOICE,
    "Not a valid integer value.": _l("Vui lòng nhập một số nguyên."),
    "Not a valid decimal value.": _NUMBER,
    "Not a valid float value.": _NUMBER,
    "Not a valid date value.": _l("Ngày không hợp lệ."),
    "Invalid input.": _l("Giá trị không hợp lệ."),
}


class _WTFormsMessages:
    """The translations object WTForms asks for its messages (see StaffForm)."""

    def gettext(self, string: str) -> str:
        return str(WTFORMS_MESSAGES.get(string, string))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


_WTFORMS_TRANSLATIONS = _WTFormsMessages()


class StaffForm(FlaskForm):
    """A staff page's form: WTForms' built-in messages in the page's language."""

    class Meta:
        def get_translations(self, form):
            return _WTFORMS_TRANSLATIONS


class InvalidSubmission(Exception):
    """Something no browser rendering our page could send (tampering or a stale form)."""


# A code as our page writes it: ASCII digits, no sign, space or leading zero. int() alone
# would also take "+4", " 4 ", "04", "4_0", full-width "４" and Arabic-Indic "٤".
CODE = re.compile(r"0|[1-9][0-9]{0,8}")


def parse_code(name: str, raw: str) -> int:
    if not CODE.fullmatch(raw):
        raise InvalidSubmission(f"{name}: {raw!r} is not a code")
    return int(raw)


# --- reading and checking one answer: shared by the WTForms fields and PostedForm ----------


def read_code(name: str, valuelist: list[str]) -> int | None:
    """One code from a field's values; none or an empty one is no answer."""
    if not valuelist or valuelist[0] == "":
        return None
    if len(valuelist) > 1:
        raise InvalidSubmission(f"{name}: several values for a single choice")
    return parse_code(name, valuelist[0])


def read_codes(name: str, valuelist: list[str]) -> list[int]:
    """A multiple choice's codes (each box ticked at most once), sorted."""
    codes = [parse_code(name, value) for value in valuelist if value != ""]
    if len(set(codes)) != len(codes):
        raise InvalidSubmission(f"{name}: a box sent twice")
    return sorted(codes)


def read_text(name: str, valuelist: list[str]) -> str | None:
    """A free text answer, one value, NFC-normalised and stripped."""
    if len(valuelist) > 1:
        raise InvalidSubmission(f"{name}: several values for a text")
    raw = valuelist[0] if valuelist else ""
    # Normalise so that the same words typed on different keyboards compare equal.
    return unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip() or None


def check_codes(name: str, codes: frozenset, data) -> None:
    """An answer's codes are among its options, else the submission is invalid."""
    if isinstance(data, list):
        if any(code not in codes for code in data):
            raise InvalidSubmission(f"{name}: a code outside its options")
    elif data is not None and data not in codes:
        raise InvalidSubmission(f"{name}: {data} is not one of its codes")


def answer_error(question: Question, data) -> str | None:
    """The respondent's error for a question the skip logic shows, or None."""
    empty = data in (None, [], "")
    if empty and question.required:
        kind = {"text": "required_text", "multiple": "required_multiple"}
        return str(MESSAGES[kind.get(question.type, "required")])
    if question.type == "text" and data and len(data) > question.max_length:
        return str(MESSAGES["too_long"]) % {"max": question.max_length}
    return None


class CodeField(Field):
    """One code from a fixed list; a value outside the list is an invalid submission."""

    def __init__(self, codes, **kwargs):
        super().__init__(**kwargs)
        self.codes = frozenset(codes)

    def process_formdata(self, valuelist):
        self.data = read_code(self.name, valuelist)

    def pre_validate(self, form):
        check_codes(self.name, self.codes, self.data)


class CodesField(CodeField):
    """Several codes from a fixed list (multiple choice): each box ticked at most once."""

    def process_formdata(self, valuelist):
        self.data = read_codes(self.name, valuelist)


class TextField(TextAreaField):
    """A free text answer, one value, NFC-normalised and stripped."""

    def process_formdata(self, valuelist):
        self.data = read_text(self.name, valuelist)


class WhenShown:
    """Validates a question only when the skip logic shows it; hidden answers are dropped."""

    def __init__(self, questionnaire: Questionnaire, question: Question):
        self.questionnaire = questionnaire
        self.question = question

    def __call__(self, form, field: Field):
        if not self.questionnaire.is_shown(self.question.id, form.raw_answers()):
            field.errors[:] = []
            raise StopValidation()
        message = answer_error(self.question, field.data)
        if message:
            raise StopValidation(message)


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


# How each question type's answer is read from the POST (the fields above use the same).
READ_FOR_TYPE = {"likert5": read_code, "single": read_code, "yesno": read_code,
                 "multiple": read_codes, "text": read_text}


class PostedForm:
    """The public questionnaire's POST read straight against the questionnaire.

    The same readers, checks and messages as the questionnaire's ResponseForm (what staff
    keying in paper sheets use), without binding ~30 WTForms fields per submission. The
    public form carries no CSRF token: its signed, single-use, counter-bound submission key
    (and the Origin check) protect it, and the view marks the request valid once the key
    is checked (respond.py, security.py); `validate` asks CSRFProtect otherwise.
    """

    def __init__(self, questionnaire: Questionnaire, formdata):
        self.questionnaire = questionnaire
        self.started = _Value(formdata.get("started"))
        self.submission_key = _Value(formdata.get("submission_key"))
        self.errors: dict[str, list[str]] = {}
        self._plan = _plan(questionnaire)
        self._raw_answers = {qid: read(qid, formdata.getlist(qid))
                             for qid, _question, read, _codes in self._plan}

    def validate(self) -> bool:
        if current_app.config.get("WTF_CSRF_ENABLED", True) and not g.get("csrf_valid"):
            csrf.protect()  # raises CSRFError: the public form's refusal page
        raw = self._raw_answers
        errors = {}
        for qid, question, _read, codes in self._plan:
            if codes is not None:
                check_codes(qid, codes, raw[qid])
            if self.questionnaire.is_shown(qid, raw):
                message = answer_error(question, raw[qid])
                if message:
                    errors[qid] = [message]
        self.errors = errors
        return not errors

    raw_answers = ResponseForm.raw_answers
    answers = ResponseForm.answers

    def known_fields(self) -> set[str]:
        fields = {"started", "submission_key", *self.questionnaire.questions}
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            fields.add("csrf_token")
        return fields

    def multi_valued_fields(self) -> set[str]:
        """The fields a browser may send several times (a multiple-choice question's boxes)."""
        return {qid for qid, question in self.questionnaire.questions.items()
                if question.type == "multiple"}


_PLANS: dict[tuple[str, int, str], list] = {}


def _plan(questionnaire: Questionnaire) -> list:
    """Per question: id, question, reader, and its codes (None for a text), built once."""
    key = (questionnaire.id, questionnaire.version, questionnaire.source)
    if key not in _PLANS:
        _PLANS[key] = [(qid, question, READ_FOR_TYPE[question.type],
                        None if question.type == "text" else question.codes)
                       for qid, question in questionnaire.questions.items()]
    return _PLANS[key]


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
