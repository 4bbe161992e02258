"""The Flask application factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, render_template


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    from . import config

    app.config.from_mapping(config.load())
    if test_config:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + str(Path(app.instance_path) / "survey.sqlite")
    app.config["PUBLIC_URL"] = app.config["PUBLIC_URL"].rstrip("/")

    from . import admin, auth, db, demo, health, i18n, posters, questionnaires, respond, security

    security.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    questionnaires.init_app(app)
    app.register_blueprint(respond.bp)
    from . import reports

    app.register_blueprint(reports.bp)
    respond.register_error_handlers(app)
    auth.init_app(app)
    admin.init_app(app)
    posters.init_app(app)
    demo.init_app(app)
    _register_error_pages(app)

    @app.get("/")
    def index():
        return render_template("home.html")

    health.init_app(app)  # /healthz for the load balancer

    return app


def _register_error_pages(app: Flask) -> None:
    for status in (400, 403, 404, 405, 413, 500):
        app.register_error_handler(
            status, lambda exc, status=status: (render_template(f"errors/{status}.html"), status)
        )
