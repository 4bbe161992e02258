"""The Flask application factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, extensions, error pages and logging, blueprints, CLI."""
    app = Flask(__name__, instance_relative_config=True)
    from . import config

    # As in Flask's tutorial: the instance folder's settings apply unless a test passes its own.
    instance_path = None if test_config else app.instance_path
    app.config.from_mapping(config.load(instance_path=instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + str(Path(app.instance_path) / "survey.sqlite")
    app.config["PUBLIC_URL"] = app.config["PUBLIC_URL"].rstrip("/")

    from . import (
        admin,
        api,
        auth,
        comments,
        db,
        demo,
        errors,
        health,
        i18n,
        posters,
        questionnaires,
        receipts,
        reports,
        respond,
        security,
        volumes,
    )

    # Extensions first (errors first of all: its timer starts before any other hook runs).
    errors.init_app(app)
    security.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    questionnaires.init_app(app)
    # Blueprints by audience: the public questionnaire; staff (login, administration, receipt
    # codes, served volumes); reports; the one-stop system's JSON API (key auth, no CSRF).
    for blueprint in (respond.bp, auth.bp, admin.bp, receipts.bp, volumes.bp, reports.bp,
                      comments.bp, api.bp):
        app.register_blueprint(blueprint)
    # What the modules add besides their routes: template helpers, hooks, CLI commands.
    auth.init_app(app)
    admin.init_app(app)
    receipts.init_app(app)
    volumes.init_app(app)  # `flask import-volumes`
    posters.init_app(app)  # `flask posters`
    demo.init_app(app)  # `flask demo`
    health.init_app(app)  # /healthz for the load balancer

    return app
