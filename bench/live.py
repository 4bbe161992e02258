"""A real HTTP server on 127.0.0.1 over a fresh, seeded SQLite database (bench, browser tests)."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from survey import create_app
from survey.db import upgrade
from survey.models import Agency, Counter, utcnow


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # one line per request drowns the figures
        pass


@dataclass
class LiveApp:
    """The app served by werkzeug in a thread; use as a context manager.

    ``tokens`` maps a role to a counter's token: ``service`` (the SIPAS questionnaire),
    ``quick`` (the counter quick form) and ``revoked`` (a counter whose token was revoked).
    """

    folder: Path | None = None
    config: dict = field(default_factory=dict)
    base_url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> LiveApp:
        self._tmp = None
        if self.folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sipas-live-")
            self.folder = Path(self._tmp.name)
        url = f"sqlite:///{self.folder / 'survey.sqlite'}"
        upgrade(url)
        self.app = create_app({
            "TESTING": True,
            "SECRET_KEY": "live-server-secret",
            "DATABASE_URL": url,
            # Every browser test answers from one address: no repeat flags here.
            "REPEAT_PER_HOUR": 1000,
            "REPEAT_HARD_PER_HOUR": 1000,
            **self.config,
        })
        self.app.instance_path = str(self.folder / "instance")
        self.tokens = seed(self.app)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True,
                                  request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.app.config["PUBLIC_URL"] = self.base_url
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
        self.app.extensions["survey_db"].engine.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

    def session(self):
        """A database session of the caller's own (close it)."""
        return self.app.extensions["survey_db"].sessionmaker()


def seed(app) -> dict[str, str]:
    """One agency with a SIPAS counter, a quick-form counter and a revoked counter."""
    session = app.extensions["survey_db"].sessionmaker()
    try:
        agency = Agency(code="TTPVHCC", name="Trung tâm Phục vụ hành chính công tỉnh",
                        level="province")
        counters = {
            "service": Counter(agency=agency, label="Quầy 3 – Tư pháp",
                               questionnaire_id="sipas-service"),
            "quick": Counter(agency=agency, label="Quầy 1 – Tiếp nhận chung",
                             questionnaire_id="counter-quick"),
            "revoked": Counter(agency=agency, label="Quầy cũ", questionnaire_id="sipas-service"),
        }
        for counter in counters.values():
            counter.issue_token()
        session.add(agency)
        session.commit()
        tokens = {role: counter.tokens[0].token for role, counter in counters.items()}
        counters["revoked"].tokens[0].revoked_at = utcnow()
        session.commit()
        return tokens
    finally:
        session.close()
