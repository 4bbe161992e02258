"""The questionnaire model: every shipped file loads; any fault names the file, place and fault."""

import copy
import re
import subprocess
import sys
import unicodedata

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.questionnaire import (
    COUNTER_QUICK,
    OVERALL_RATING,
    REASONS,
    SERVICE_FIELD,
    SIPAS,
    QuestionnaireError,
    load_file,
    parse,
)
from survey.questionnaires import Registry, default_folder

from .conftest import ROOT

SHIPPED = sorted(default_folder().glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_questionnaire_validates(path):
    questionnaire = load_file(path)
    assert questionnaire.questions
    text = path.read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", text)


def test_sipas_service_has_five_elements_and_sixteen_criteria():
    sipas = Registry(default_folder()).latest("sipas-service")
    assert [e.id for e in sipas.elements] == ["A", "B", "C", "D", "E"]
    per_element = {}
    for criterion in sipas.criteria:
        per_element[criterion.element] = per_element.get(criterion.element, 0) + 1
    assert per_element == {"A": 3, "B": 4, "C": 3, "D": 3, "E": 3}
    # Element E only for those who gave feedback.
    assert sipas.is_shown("e1", {"gave_feedback": 1})
    assert not sipas.is_shown("e1", {"gave_feedback": 2})
    assert not sipas.is_shown("e1", {})
    for qid in ("gender", "age_band", "education", "occupation", "ethnicity"):
        question = sipas.questions[qid]
        assert not question.required and 99 in question.codes
    assert sipas.questions["comment"].type == "text"
    assert sipas.questions["comment"].max_length <= 2000


def test_counter_quick_form_requires_a_reason_only_when_unsatisfied():
    # v1 required a reason; v2 folds the reasons into an optional part (issue 13).
    assert Registry(default_folder()).get("counter-quick", 1).questions["reasons"].required
    quick = Registry(default_folder()).latest("counter-quick")
    assert quick.questions["overall"].codes == {1, 2, 3}
    assert quick.is_shown("reasons", {"overall": 1})
    assert not quick.is_shown("reasons", {"overall": 3})
    assert 3 <= len(quick.criteria) <= 5


def _sipas_data():
    return yaml.safe_load((default_folder() / "sipas-service-v1.yaml").read_text("utf-8"))


def _broken(mutate):
    data = copy.deepcopy(_sipas_data())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "place", "reason"),
    [
        (lambda d: d["sections"][1]["questions"][0].update(type="stars"),
         "sections[1].questions[0].type", "unknown type"),
        (lambda d: d["sections"][1]["questions"][1].update(
            id=d["sections"][1]["questions"][0]["id"]),
         "sections[1].questions[1].id", "duplicate question id"),
        (lambda d: d["sections"][0]["questions"][0]["text"].pop("en"),
         "sections[0].questions[0].text", "missing required key 'en'"),
        (lambda d: d["sections"][0]["questions"][0]["options"][1].update(code=1),
         "sections[0].questions[0].options[1].code", "duplicate code"),
        (lambda d: d["sections"][0]["questions"][0].update(
            show_if={"question": "comment", "in": [1]}),
         "sections[0].questions[0].show_if.question", "not an earlier question"),
        (lambda d: d["sections"][1].update(element="Z"), "sections[1].element", "not one of"),
        (lambda d: d["sections"][0]["questions"][0]["text"].update(vi="Linh vực\u0301"),
         "sections[0].questions[0].text.vi", "NFC"),
        (lambda d: d.update(version=0), "version", "out of range"),
        (lambda d: d["sections"][0]["questions"][0].update(colour="red"),
         "sections[0].questions[0]", "unknown key(s) colour"),
    ],
)
def test_errors_name_the_file_the_place_and_the_fault(mutate, place, reason):
    with pytest.raises(QuestionnaireError) as caught:
        parse(_broken(mutate), "questionnaires/broken-v1.yaml")
    message = str(caught.value)
    assert message.startswith("questionnaires/broken-v1.yaml: ")
    assert place in message
    assert reason in message


def test_published_file_name_must_match_id_and_version(tmp_path):
    path = tmp_path / "sipas-service-v2.yaml"
    path.write_text((default_folder() / "sipas-service-v1.yaml").read_text("utf-8"), "utf-8")
    with pytest.raises(QuestionnaireError, match="must be named sipas-service-v1.yaml"):
        Registry(tmp_path)
    # An analyst's copy under another name is still read (the rule is the published folder's).
    assert load_file(path).id == "sipas-service"


def test_registry_serves_the_latest_version_and_keeps_old_ones(tmp_path):
    data = _sipas_data()
    (tmp_path / "sipas-service-v1.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    data["version"] = 2
    (tmp_path / "sipas-service-v2.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    registry = Registry(tmp_path)
    assert registry.latest("sipas-service").version == 2
    assert registry.get("sipas-service", 1).version == 1


def test_shipped_files_declare_their_kind_and_special_questions():
    registry = Registry(default_folder())
    sipas, quick = registry.latest("sipas-service"), registry.latest("counter-quick")
    assert (sipas.kind, quick.kind) == (SIPAS, COUNTER_QUICK)
    assert set(sipas.roles) == {SERVICE_FIELD}
    assert sipas.roles[SERVICE_FIELD].type == "single" and len(sipas.roles[SERVICE_FIELD].codes) > 1
    assert set(quick.roles) == {OVERALL_RATING, REASONS}
    assert quick.roles[OVERALL_RATING].codes == {1, 2, 3}
    assert quick.roles[REASONS].type == "multiple"


def _quick_data():
    return yaml.safe_load((default_folder() / "counter-quick-v1.yaml").read_text("utf-8"))


def _second_overall(data):
    data["sections"][0]["questions"].append(
        {**copy.deepcopy(data["sections"][0]["questions"][0]), "id": "overall_again"})


@pytest.mark.parametrize(
    ("base", "mutate", "place", "reason"),
    [
        (_quick_data, lambda d: d.update(kind="stars"), "kind", "unknown kind 'stars'"),
        (_quick_data, lambda d: d["sections"][0]["questions"][0].pop("role"), "kind",
         "needs exactly one question with role overall_rating"),
        (_quick_data, _second_overall, "sections[0].questions[3].role",
         "role overall_rating is already given to sections[0].questions[0]"),
        (_quick_data, lambda d: d["sections"][0]["questions"][1].update(role="service_field"),
         "sections[0].questions[1].role", "needs a question of type single, not multiple"),
        (_quick_data, lambda d: d["sections"][0]["questions"][0]["options"].append(
            {"code": 4, "text": {"vi": "Khác", "en": "Other"}}),
         "sections[0].questions[0].role", "needs exactly the codes 3"),
        (_quick_data, lambda d: d["sections"][0]["questions"][1].update(role="reason"),
         "sections[0].questions[1].role", "unknown role 'reason'"),
        (_sipas_data, lambda d: d["sections"][0]["questions"][0].update(role="overall_rating"),
         "sections[0].questions[0].role", "role overall_rating is not used by this kind"),
        (_sipas_data, lambda d: d["sections"][-2]["questions"][0].update(role="service_field"),
         "sections[7].questions[0].role", "role service_field is already given"),
        (_sipas_data, lambda d: [s.pop("element", None) for s in d["sections"]], "kind",
         "needs likert5 criteria"),
        (_sipas_data, lambda d: d["sections"][1].update(element=None), "sections[1].element",
         "invalid id None"),
    ],
)
def test_kind_and_roles_are_checked(base, mutate, place, reason):
    data = base()
    mutate(data)
    with pytest.raises(QuestionnaireError) as caught:
        parse(data, "questionnaires/broken-v1.yaml")
    assert str(caught.value).startswith(f"questionnaires/broken-v1.yaml: {place}: ")
    assert reason in str(caught.value)


def test_a_key_given_twice_is_an_error_not_silently_the_last(tmp_path):
    path = tmp_path / "sipas-service-v1.yaml"
    text = (default_folder() / "sipas-service-v1.yaml").read_text("utf-8")
    path.write_text(text.replace("version: 1\n", "version: 1\nversion: 2\n", 1), "utf-8")
    with pytest.raises(QuestionnaireError, match=r"duplicate key 'version'") as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}: ") and "line 3" in str(caught.value)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "counter-quick-v1.yaml"
    path.write_text((default_folder() / "counter-quick-v1.yaml").read_text("utf-8"), "utf-8-sig")
    assert load_file(path) == Registry(default_folder()).get("counter-quick", 1)


# --- Property: any mutation of a valid file is a QuestionnaireError naming file and place. ---

SOURCE = "questionnaires/mutant-v1.yaml"
PARSED = [_sipas_data(), _quick_data()]
KNOWN_KEYS = {
    "id", "version", "kind", "title", "description", "elements", "sections", "questions",
    "element", "show_if", "help", "type", "text", "options", "required", "not_applicable",
    "max_length", "role", "code", "question", "in", "vi", "en",
}
ID_PATTERNS = {"file": r"[a-z0-9-]+", "element": r"[A-Za-z0-9_]+", "other": r"[a-z0-9_]+"}
VALUES_OF_KIND = {
    bool: st.booleans(),
    int: st.integers(),
    float: st.floats(),
    str: st.text(max_size=5),
    type(None): st.none(),
    list: st.lists(st.integers(), max_size=2),
    dict: st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
}


def _nodes(value, path=()):
    """Every (path, value) of a parsed file; a path is a tuple of keys and list indexes."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, (*path, i))


def _dotted(path) -> str:
    """The path as the loader names it: sections[2].questions[0].text.vi; root: (top level)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def _mutate(draw, data):
    """Change the parsed file so that it is certainly invalid; returns (kind, path) of it."""
    nodes = list(_nodes(data))
    mutation = draw(st.sampled_from(
        ["type", "unknown_key", "bad_id", "role", "duplicate", "nfc"]))
    if mutation == "type":
        path, value = draw(st.sampled_from(nodes))
        other = draw(st.sampled_from([k for k in VALUES_OF_KIND if k is not type(value)]))
        new = draw(VALUES_OF_KIND[other])
        if not path:
            return mutation, path, new
        _at(data, path[:-1])[path[-1]] = new
        return mutation, path, data
    if mutation == "unknown_key":
        path, value = draw(st.sampled_from([(p, v) for p, v in nodes if isinstance(v, dict)]))
        key = draw(st.one_of(st.text(min_size=1, max_size=8), st.integers()).filter(
            lambda k: k not in KNOWN_KEYS))
        value[key] = draw(st.one_of(st.text(max_size=3), st.integers(), st.none()))
        return mutation, path, data
    if mutation == "bad_id":
        path, _ = draw(st.sampled_from([(p, v) for p, v in nodes if p and p[-1] == "id"]))
        where = "file" if len(path) == 1 else "element" if path[0] == "elements" else "other"
        bad = draw(st.one_of(st.text(max_size=6), st.sampled_from(
            ["Q1", "a-b", "a_b", "a1\n", "ố", " a1", ""])).filter(
            lambda t: not re.fullmatch(ID_PATTERNS[where], t)))
        _at(data, path[:-1])["id"] = bad
        return mutation, path, data
    questions = [(p, v) for p, v in nodes if len(p) >= 2 and p[-2] == "questions"]
    if mutation == "role":
        path, question = draw(st.sampled_from(questions))
        role = draw(st.one_of(st.sampled_from([OVERALL_RATING, REASONS, SERVICE_FIELD]),
                              st.text(max_size=12), st.integers(), st.none()).filter(
            lambda r: r != question.get("role")))
        question["role"] = role
        return mutation, (*path, "role"), data
    if mutation == "duplicate":
        groups = [[p for p, _ in questions]] + [
            [p for p, _ in nodes if len(p) == 2 and p[0] == top] for top in ("sections", "elements")
        ]
        groups = [group for group in groups if len(group) > 1]
        for p, v in nodes:
            if p and p[-1] == "options" and len(v) > 1:
                groups.append([(*p, i) for i in range(len(v))])
        group = draw(st.sampled_from(groups))
        i, j = sorted(draw(st.lists(st.integers(0, len(group) - 1), min_size=2, max_size=2,
                                    unique=True)))
        key = "code" if group[j][-2] == "options" else "id"
        _at(data, group[j])[key] = _at(data, group[i])[key]
        return mutation, (*group[j], key), data
    path, _ = draw(st.sampled_from([(p, v) for p, v in nodes if p and p[-1] in ("vi", "en")]))
    _at(data, path[:-1])[path[-1]] = draw(st.text(max_size=4)) + "e\u0301"
    return mutation, path, data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_of_a_valid_file_names_the_file_and_the_place(data):
    base = copy.deepcopy(data.draw(st.sampled_from(PARSED), label="file"))
    mutation, path, mutant = _mutate(data.draw, base)
    with pytest.raises(QuestionnaireError) as caught:
        parse(mutant, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: ")
    place, _, fault = message[len(SOURCE) + 2:].partition(": ")
    assert fault.strip()
    assert re.fullmatch(r"\(top level\)|[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*", place), place
    if mutation in ("type", "unknown_key", "bad_id", "nfc"):
        # The fault is reported where it is, or at the mapping or list holding it.
        mutated = _dotted(path)
        assert place == "(top level)" or mutated == place or mutated.startswith(
            (place + ".", place + "[")), (mutated, message)
    elif mutation == "duplicate":
        assert place == _dotted(path) and "duplicate" in fault
    else:
        assert place == "kind" or place.endswith(".role"), message


def test_importing_the_library_loads_neither_flask_nor_argparse():
    code = ("import analysis, analysis.quick, analysis.questionnaire; import sys; "
            "assert 'flask' not in sys.modules and 'argparse' not in sys.modules, "
            "sorted(m for m in ('flask', 'argparse') if m in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
