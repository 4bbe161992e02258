"""Bytes on the wire and requests per public page, fetched the way a phone's browser does.

Usage (from the repository root):

    .venv/bin/python bench/bench_page.py              # start the app on SQLite and measure
    .venv/bin/python bench/bench_page.py --check      # also exit 1 when over the budget
    .venv/bin/python bench/bench_page.py --url https://hailong.example.vn/r/ABCD2345

Each page is measured as a first visit (nothing cached): the page itself, then every
stylesheet, script, image, icon and font it references (and what those stylesheets
reference), with ``Accept-Encoding: gzip, br``. Bytes on the wire are the response
headers plus the body as sent (compressed when the server compresses). The budget of
design.md applies to the questionnaire pages: at most 14 KB and 3 requests.
"""

from __future__ import annotations

import argparse
import http.client
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUDGET_BYTES = 14 * 1024
BUDGET_REQUESTS = 3
# An Android phone's Chromium sends about these.
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (Linux; Android 8.1.0; bench) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, br",
}


@dataclass
class Fetched:
    url: str
    status: int
    wire_bytes: int
    body_bytes: int
    content_type: str
    encoding: str
    body: bytes
    location: str = ""


@dataclass
class PageResult:
    name: str
    fetches: list[Fetched] = field(default_factory=list)
    page: Fetched | None = None  # the document itself, after any redirect

    @property
    def requests(self) -> int:
        return len(self.fetches)

    @property
    def wire_bytes(self) -> int:
        return sum(f.wire_bytes for f in self.fetches)

    @property
    def fonts(self) -> list[str]:
        return [f.url for f in self.fetches if "font" in f.content_type
                or re.search(r"\.(woff2?|ttf|otf|eot)(\?|$)", f.url)]


class Client:
    """A minimal browser: one cookie jar, raw (still compressed) bodies, no cache."""

    def __init__(self, language: str = "vi"):
        self.cookies: dict[str, str] = {}
        self.language = language

    def request(self, method: str, url: str, data: dict | None = None,
                accept: str | None = None) -> Fetched:
        parts = urllib.parse.urlsplit(url)
        connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                            else http.client.HTTPConnection)
        connection = connection_class(parts.netloc, timeout=30)
        headers = dict(BROWSER_HEADERS, **{"Accept-Language": f"{self.language},en;q=0.5"})
        if accept:
            headers["Accept"] = accept
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            header_bytes = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + sum(
                len(k) + len(v) + 4 for k, v in response.getheaders()) + 2
            for key, value in response.getheaders():
                if key.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            return Fetched(url, response.status, header_bytes + len(raw), len(raw),
                           response.getheader("Content-Type", ""),
                           response.getheader("Content-Encoding", ""), raw,
                           response.getheader("Location", ""))
        finally:
            connection.close()

    def page(self, name: str, url: str, method: str = "GET", data: dict | None = None,
             follow: bool = True) -> PageResult:
        """A page and everything it references, as a browser's first visit loads it."""
        result = PageResult(name)
        fetched = self.request(method, url, data)
        while follow and fetched.status in (301, 302, 303, 307, 308):
            result.fetches.append(fetched)
            url = urllib.parse.urljoin(url, fetched.location)
            fetched = self.request("GET", url)
        result.fetches.append(fetched)
        result.page = fetched
        seen = {url}
        queue = [(url, fetched)]
        while queue:
            base, item = queue.pop(0)
            for ref in references(decoded(item), item.content_type):
                target = urllib.parse.urljoin(base, ref)
                if target in seen or not target.startswith(("http://", "https://")):
                    continue
                seen.add(target)
                sub = self.request("GET", target, accept="*/*")
                result.fetches.append(sub)
                queue.append((target, sub))
        return result


def decoded(item: Fetched) -> str:
    body = item.body
    if item.encoding == "gzip":
        import gzip

        body = gzip.decompress(body)
    elif item.encoding == "br":
        try:
            import brotli
        except ImportError:  # the app itself only sends gzip
            return ""
        body = brotli.decompress(body)
    return body.decode("utf-8", "replace")


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if tag == "link" and a.get("href") and set(rel) & {
                "stylesheet", "icon", "preload", "modulepreload", "manifest", "apple-touch-icon"}:
            self.found.append(a["href"])
        elif tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and a.get(
                "src"):
            self.found.append(a["src"])
        if a.get("srcset"):
            self.found += [part.strip().split()[0] for part in a["srcset"].split(",") if part]
        if tag == "video" and a.get("poster"):
            self.found.append(a["poster"])


def references(text: str, content_type: str) -> list[str]:
    """What a browser would fetch next from this HTML or CSS (data: URLs cost no request)."""
    if "html" in content_type:
        parser = _References()
        parser.feed(text)
        refs = parser.found
    elif "css" in content_type:
        refs = re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
        refs += re.findall(r"@import\s+['\"]([^'\"]+)", text)
    else:
        refs = []
    return [r for r in refs if not r.strip().lower().startswith("data:")]


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def complete_answers(app, questionnaire_id: str) -> dict[str, str]:
    """A valid set of answers: the first option of every shown question."""
    with app.app_context():
        from survey.questionnaires import registry

        questionnaire = registry().latest(questionnaire_id)
    answers: dict = {}
    for question in questionnaire.questions.values():
        if not questionnaire.is_shown(question.id, answers):
            continue
        if question.type == "text":
            continue
        code = 2 if question.type == "yesno" else max(o.code for o in question.options)
        answers[question.id] = [code] if question.type == "multiple" else code
    return {k: str(v[0] if isinstance(v, list) else v) for k, v in answers.items()}


def measure_live(live) -> list[PageResult]:
    base, tokens = live.base_url, live.tokens
    results = []
    for lang in ("vi", "en"):
        results.append(Client(lang).page(f"questionnaire SIPAS ({lang})",
                                         f"{base}/r/{tokens['service']}"))
    results.append(Client().page("questionnaire quick form", f"{base}/r/{tokens['quick']}"))

    client = Client()
    form = client.request("GET", f"{base}/r/{tokens['service']}")
    results.append(client.page("errors shown (422)", f"{base}/r/{tokens['service']}", "POST",
                               hidden_fields(decoded(form))))

    client = Client()
    form = client.request("GET", f"{base}/r/{tokens['service']}")
    data = {**hidden_fields(decoded(form)), **complete_answers(live.app, "sipas-service")}
    results.append(client.page("submit -> thank-you", f"{base}/r/{tokens['service']}", "POST",
                               data))
    results.append(Client().page("404 unknown code", f"{base}/r/ZZZZZZZZZZ"))
    results.append(Client().page("410 revoked code", f"{base}/r/{tokens['revoked']}"))
    results.append(Client().page("paper form SIPAS (print)", f"{base}/phieu/sipas-service"))
    results.append(Client().page("paper form quick (print)", f"{base}/phieu/counter-quick"))
    return results


def report(results: list[PageResult], out=sys.stdout) -> bool:
    """Print one line per page; return whether every questionnaire page is within budget."""
    ok = True
    out.write(f"{'page':32} {'status':>6} {'req':>4} {'page B':>8} {'total B':>8}  budget\n")
    for result in results:
        page_fetch = result.page
        verdict = ""
        if result.name.startswith("questionnaire"):
            within = (result.wire_bytes <= BUDGET_BYTES and result.requests <= BUDGET_REQUESTS
                      and not result.fonts)
            ok &= within
            verdict = "ok" if within else "OVER"
        out.write(f"{result.name:32} {page_fetch.status:>6} {result.requests:>4} "
                  f"{page_fetch.wire_bytes:>8} {result.wire_bytes:>8}  {verdict}\n")
        for fetched in result.fetches:
            path = urllib.parse.urlsplit(fetched.url).path
            out.write(f"    {fetched.status} {fetched.wire_bytes:>7} B  "
                      f"{fetched.encoding or 'identity':8} {path}\n")
        if result.fonts:
            out.write(f"    web fonts: {', '.join(result.fonts)}\n")
    out.write(f"budget for questionnaire pages: <= {BUDGET_BYTES} B, <= {BUDGET_REQUESTS} "
              "requests, no web fonts\n")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", default=[],
                        help="measure this page of a running server instead (repeatable)")
    parser.add_argument("--lang", default="vi", help="Accept-Language for --url (default vi)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a questionnaire page is over the budget")
    args = parser.parse_args(argv)
    if args.url:
        results = [Client(args.lang).page(f"questionnaire {url}"[:32], url) for url in args.url]
    else:
        from bench.live import LiveApp

        # The figures, not the app's one-line-per-request log.
        with LiveApp(config={"LOG_LEVEL": "WARNING"}) as live:
            results = measure_live(live)
    ok = report(results)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
