"""Thousands of malformed submissions at the public endpoint: never a 5xx, never a stored row.

Each example starts from a submission a browser would send and breaks it in one to three
ways (odd codes, unknown, duplicated and file fields, NULs and invalid UTF-8 in path and
body, huge bodies, expired pages and cross-site origins, revoked and unknown tokens, odd
submission keys: malformed, well-formed but forged, signed for another counter, or the old
unsigned form: the key is the form's CSRF protection). The body is built as raw bytes so
that invalid UTF-8 reaches the server as sent.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from flask_wtf.csrf import same_origin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from analysis.questionnaire import load_file
from survey import integrity
from survey.models import Answer, Response, SubmissionCount, utcnow

from .conftest import form_fields
from .test_respond import complete_answers

# Questions answered with a code (the comment is free text: any value is a valid answer).
CODE_QUESTIONS = [qid for qid in complete_answers() if qid != "comment"] + ["e1", "e2", "e3"]
# The codes each question offers: "7" is odd for a criterion but a valid service field.
_QUESTIONS = load_file(Path(__file__).parent.parent / "questionnaires" / "sipas-service-v2.yaml"
                       ).questions
VALID = {qid: {str(code) for code in _QUESTIONS[qid].codes} for qid in CODE_QUESTIONS}
HIDDEN = ("started", "submission_key")

odd_codes = st.one_of(
    st.sampled_from(["+4", " 4 ", "04", "4 ", "\uff14", "\u0664", "\u0e54", "4_0", "-1", "7",
                     "99999999999999999999", "4.0", "1e0", "0x4", "true", "None", "[]",
                     "=1+1", "@SUM(A1)", "4\n", "\t4"]),
    st.integers().map(str),
    st.text(max_size=30),
).filter(lambda value: value != "")  # "" is "no answer"
HEX = "0123456789abcdef"
# None of these can carry a valid signature: only the server can sign a key.
odd_keys = st.one_of(
    st.just(""),
    st.text(max_size=80),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=64),
    st.just("0" * 5032),
    st.text(alphabet=HEX, min_size=32, max_size=32),  # the old, unsigned form
    st.tuples(st.text(alphabet=HEX, min_size=32, max_size=32),
              st.text(alphabet=HEX, min_size=8, max_size=8),
              st.text(alphabet=HEX, min_size=32, max_size=32)).map(".".join),
)
junk_bytes = st.one_of(
    st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe0\x80\x80", b"a\x00b"]),
    st.binary(min_size=1, max_size=20).filter(lambda raw: b"\x00" in raw or not _utf8(raw)),
)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Fuzz:
    """What one example sends: fields as (name bytes, value bytes), the path, the client."""

    def __init__(self, live_token):
        self.fields = []
        self.path_token = live_token
        self.files = False
        self.cookies = True
        self.pad = 0
        self.expired = False
        self.headers = {}


# Each mutation makes a submission that a browser rendering our page could not send.
def mutate_code(fuzz, draw):
    name = draw(st.sampled_from(CODE_QUESTIONS))
    value = draw(odd_codes.filter(lambda value: value not in VALID[name]))
    set_field(fuzz, name, value.encode("utf-8", "surrogatepass"))


def mutate_unknown_field(fuzz, draw):
    name = draw(st.text(min_size=1, max_size=20).filter(
        lambda n: n not in [*CODE_QUESTIONS, "comment", *HIDDEN, "_lang", "csrf_token"]))
    fuzz.fields.append((name.encode("utf-8", "surrogatepass"), draw(st.binary(max_size=10))))


def mutate_duplicate(fuzz, draw):
    name = draw(st.sampled_from(list(HIDDEN) + ["a1", "comment", "gender", "_lang"]))
    values = [value for key, value in fuzz.fields if key == name.encode()] or [b"vi"]
    fuzz.fields.append((name.encode(), draw(st.sampled_from(values + [b"2", b""]))))
    if name == "_lang" and len([k for k, _v in fuzz.fields if k == b"_lang"]) < 2:
        fuzz.fields.append((b"_lang", b"en"))


def mutate_file(fuzz, draw):
    fuzz.files = draw(st.sampled_from(["a1", "comment", "upload", "csrf_token"]))


def mutate_junk_value(fuzz, draw):
    name = draw(st.sampled_from(["comment", "a1", "started", "submission_key", "gender"]))
    set_field(fuzz, name, draw(junk_bytes))


def mutate_junk_name(fuzz, draw):
    fuzz.fields.append((b"comment" + draw(junk_bytes), b"4"))


def mutate_path(fuzz, draw):
    fuzz.path_token = draw(st.one_of(
        st.sampled_from(["REVOKED", "UNKNOWN", "AB%00CD", "%FF%FE", "%00", "ZZZZZZZZZZ",
                         "..%2F..%2Fadmin"]),
        st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ23456789", min_size=1, max_size=12),
    ))


def mutate_huge(fuzz, draw):
    fuzz.pad = draw(st.integers(64 * 1024, 200 * 1024))


def mutate_csrf(fuzz, draw):
    """What CSRF protection refuses: a page older than its time limit, another site's page."""
    fuzz.cookies = draw(st.booleans())  # the form needs no cookie either way
    if draw(st.booleans()):
        fuzz.expired = True
    else:
        fuzz.headers = {"Origin": draw(st.one_of(
            st.sampled_from(["http://evil.example", "https://localhost", "http://localhost:81",
                             "http://localhost.evil.example", "=HYPERLINK(\"x\")"]),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                    min_size=1, max_size=60),
        ).filter(lambda origin: origin.strip() not in ("", "null")
                 and not same_origin(origin.strip(), "http://localhost/")))}


def mutate_key(fuzz, draw):
    choice = draw(st.sampled_from(["odd", "other-counter", "tampered"]))
    if choice == "other-counter":  # signed by us, for another counter's page
        set_field(fuzz, "submission_key", fuzz.other_key.encode())
        return
    key = dict(fuzz.fields).get(b"submission_key", b"").decode("utf-8", "replace")
    if choice == "tampered" and key.strip("."):  # an earlier mutation may have emptied it
        # our key with one character changed
        at = draw(st.integers(0, len(key) - 1).filter(lambda i: key[i] != "."))
        new = draw(st.sampled_from(HEX).filter(lambda c: c != key[at]))
        set_field(fuzz, "submission_key", (key[:at] + new + key[at + 1:]).encode())
        return
    key = draw(odd_keys)
    if key == "" and draw(st.booleans()):
        fuzz.fields = [(k, v) for k, v in fuzz.fields if k != b"submission_key"]
    else:
        set_field(fuzz, "submission_key", key.encode("utf-8", "surrogatepass"))


def set_field(fuzz, name, value: bytes):
    fuzz.fields = [(k, v) for k, v in fuzz.fields if k != name.encode()] + [(name.encode(), value)]


MUTATIONS = [mutate_code, mutate_unknown_field, mutate_duplicate, mutate_file,
             mutate_junk_value, mutate_junk_name, mutate_path, mutate_huge, mutate_csrf,
             mutate_key]


def urlencoded(fields) -> bytes:
    return b"&".join(quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode()
                     for k, v in fields)


@pytest.fixture
def public_endpoint(app, session, make_counter, client):
    """A live counter, a withdrawn one, a served form's fields, a key for another counter."""
    live = make_counter()
    revoked = make_counter(label="Quầy cũ")
    revoked_token = revoked.token
    revoked.tokens[0].revoked_at = utcnow()
    session.commit()
    page = client.get(f"/r/{live.token}")
    hidden = form_fields(page.get_data(as_text=True))
    with app.test_request_context():
        other_key = integrity.issue_key(revoked.id)
    return live.token, revoked_token, hidden, other_key


def stored(session):
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Response)),
            session.scalar(select(func.count()).select_from(Answer)))


@settings(max_examples=750, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(st.data())
def test_malformed_submissions_get_a_4xx_and_store_nothing(app, session, client,
                                                           public_endpoint, data):
    live, revoked, hidden, other_key = public_endpoint
    fuzz = Fuzz(live)
    fuzz.other_key = other_key
    answers = complete_answers()
    fuzz.fields = [(k.encode(), v.encode()) for k, v in {**hidden, **answers}.items()]
    for mutation in data.draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
                              label="mutations"):
        mutation(fuzz, data.draw)
    token = {"REVOKED": revoked, "UNKNOWN": "QQQQQQQQQQ"}.get(fuzz.path_token, fuzz.path_token)
    sender = client if fuzz.cookies else app.test_client(use_cookies=False)
    # Every served page is older than a negative lifetime: expired, like a CSRF token.
    app.config["WTF_CSRF_TIME_LIMIT"] = -1 if fuzz.expired else 8 * 3600
    if fuzz.files:
        form = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                for k, v in fuzz.fields}
        form[fuzz.files] = (BytesIO(b"4" * (fuzz.pad or 1)), "answers.txt")
        response = sender.post(f"/r/{token}", data=form, content_type="multipart/form-data",
                               headers=fuzz.headers)
    else:
        body = urlencoded(fuzz.fields)
        if fuzz.pad:
            body += b"&comment=" + b"x" * fuzz.pad
        response = sender.post(f"/r/{token}", data=body, headers=fuzz.headers,
                               content_type="application/x-www-form-urlencoded")
    if response.status_code == 303:
        # Only an expired page that is otherwise sound: POST/redirect/GET back to the
        # counter's page, the answers carried in a draft (never the thank-you page).
        assert fuzz.expired, (token, fuzz.fields)
        assert response.headers["Location"].lower().endswith(f"/r/{token}".lower())
    else:
        assert 400 <= response.status_code < 500, (response.status_code, token, fuzz.files,
                                                   fuzz.pad, fuzz.cookies, fuzz.fields)
    assert stored(session) == (0, 0)


def test_the_fuzzer_starts_from_a_submission_that_is_stored(app, session, client,
                                                            public_endpoint):
    # Without this, every example could fail for one boring reason (e.g. a bad base form).
    live, _revoked, hidden, _other_key = public_endpoint
    fields = [(k.encode(), v.encode()) for k, v in {**hidden, **complete_answers()}.items()]
    response = client.post(f"/r/{live}", data=urlencoded(fields),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 303
    assert stored(session)[0] == 1
    session.expire_all()
    assert session.scalar(select(func.sum(SubmissionCount.submissions))) == 1
