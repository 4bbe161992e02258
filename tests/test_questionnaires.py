import copy
import unicodedata

import pytest
import yaml

from survey.questionnaires import QuestionnaireError, Registry, default_folder, load_file, parse

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
    quick = Registry(default_folder()).latest("counter-quick")
    assert quick.questions["overall"].codes == {1, 2, 3}
    assert quick.questions["reasons"].required
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


def test_file_name_must_match_id_and_version(tmp_path):
    path = tmp_path / "sipas-service-v2.yaml"
    path.write_text((default_folder() / "sipas-service-v1.yaml").read_text("utf-8"), "utf-8")
    with pytest.raises(QuestionnaireError, match="must be named sipas-service-v1.yaml"):
        load_file(path)


def test_registry_serves_the_latest_version_and_keeps_old_ones(tmp_path):
    data = _sipas_data()
    (tmp_path / "sipas-service-v1.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    data["version"] = 2
    (tmp_path / "sipas-service-v2.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    registry = Registry(tmp_path)
    assert registry.latest("sipas-service").version == 2
    assert registry.get("sipas-service", 1).version == 1
