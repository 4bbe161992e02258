"""What the phone downloads: compressed pages and static files, revalidated when cached."""

import gzip
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "survey" / "static"


@pytest.mark.parametrize("name", ["survey.css", "survey.js", "paper.css"])
def test_static_files_are_sent_gzipped(client, name):
    with client.get(f"/static/{name}", headers={"Accept-Encoding": "gzip, br"}) as response:
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        assert gzip.decompress(response.get_data()) == (STATIC / name).read_bytes()
        # The ETag names the file, not the gzip bytes: weak, and still revalidates.
        etag = response.headers["ETag"]
    assert etag.startswith("W/")
    with client.get(f"/static/{name}",
                    headers={"Accept-Encoding": "gzip", "If-None-Match": etag}) as again:
        assert again.status_code == 304


def test_static_file_without_gzip_is_sent_as_is(client):
    with client.get("/static/survey.css") as response:
        assert "Content-Encoding" not in response.headers
        assert response.get_data() == (STATIC / "survey.css").read_bytes()


def test_questionnaire_page_is_gzipped(client, make_counter):
    counter = make_counter()
    response = client.get(f"/r/{counter.token}", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Rất hài lòng" in gzip.decompress(response.get_data()).decode()
