"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py` (see docs/deploy.md).

Every value can be overridden on the command line or by GUNICORN_CMD_ARGS; the few that
differ between machines also read an environment variable.
"""

import json
import logging
import multiprocessing
import os
import re

from gunicorn import glogging

# The app factory of the installed package: no wsgi.py needed outside a checkout.
wsgi_app = os.environ.get("SURVEY_WSGI_APP", "survey:create_app()")

# nginx on the same machine proxies to this address; never expose gunicorn directly.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Synchronous workers: the app is CPU-bound (form rendering, pandas for reports) and keeps
# no state in the process, so throughput scales with processes. (2 × cores) + 1 is gunicorn's
# own rule of thumb: on 2 cores, 5 workers keep both cores busy while some wait on the
# database or the network, without so many that they only queue for the CPU (no threads:
# the GIL would serialise them). WEB_CONCURRENCY overrides it (e.g. fewer on a machine
# shared with PostgreSQL).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"

# Import and build the app once in the master, warmed (survey.respond.warm_up), and fork
# the workers from it: importing pandas, SQLAlchemy and the app costs ~2 s of CPU, which
# every worker started or recycled (max_requests below) would otherwise pay again, and the
# forked workers share that memory. The price: a HUP (`systemctl reload`) restarts the
# workers on the code already loaded; new code needs `systemctl restart` (docs/deploy.md).
# GUNICORN_PRELOAD=0 turns it off.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"

# A report page over a large province may compute for several seconds; a stuck worker is
# killed after `timeout` and replaced. nginx's proxy_read_timeout should be a bit longer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
# nginx keeps connections to the upstream short; a small keep-alive is enough behind it.
keepalive = 5

# Recycle workers now and then so that memory held by large report computations is returned.
max_requests = 5000
max_requests_jitter = 500



def when_ready(server):
    """Warm the preloaded app in the master (questionnaires, templates, blank pages)."""
    if not server.cfg.preload_app:
        return
    app = server.app.wsgi()
    if "questionnaires" in getattr(app, "extensions", {}):
        from survey.respond import warm_up

        warm_up(app)


def post_fork(server, worker):
    """A worker never shares the master's database connections (there should be none)."""
    app = server.app.wsgi() if server.cfg.preload_app else None
    database = getattr(app, "extensions", {}).get("survey_db")
    if database is not None:
        database.engine.dispose(close=False)


# nginx on this machine sets X-Forwarded-*; the app trusts it through SURVEY_PROXY_COUNT=1.
forwarded_allow_ips = "127.0.0.1,::1"

# Logs go to stderr/stdout, i.e. to the journal under systemd.
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# The access log below writes one JSON line per request; the app's own request line
# (survey.requests, errors.py: method, endpoint, status, duration) would repeat it, at a
# tenth of a public page's CPU. Off while the access log is on; its warnings and the app's
# errors and tracebacks are logged as ever.
if accesslog:
    logging.getLogger("survey.requests").setLevel(logging.WARNING)

# The counter's token in /r/<token>/... is masked: a log line need not say which poster.
_COUNTER_PATH = re.compile(r"^/r/[^/]+")


class JsonAccessLogger(glogging.Logger):
    """One JSON object per request, without client address, user agent or query string.

    The public questionnaire stores no IP address or user agent with answers; its access log
    keeps none either.
    """

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        record = {
            "time": self.now().strip("[]"),
            "method": environ.get("REQUEST_METHOD"),
            "path": _COUNTER_PATH.sub("/r/*", environ.get("PATH_INFO", "")),
            "status": int(status),
            "bytes": getattr(resp, "sent", None) or 0,
            "ms": round(request_time.total_seconds() * 1000, 1),
            "pid": os.getpid(),
        }
        self.access_log.info(json.dumps(record, ensure_ascii=False))


logger_class = JsonAccessLogger
