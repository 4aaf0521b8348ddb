"""The built book in a real browser: headless Chromium (Debian's `chromium`, installed by `make install-browser`)
opens every page over HTTP, and we check that MathJax typeset every piece of math (no raw `$$`, `\\(`, `\\[` left,
no MathJax error), that every image loads (`complete && naturalWidth > 0`), that no file the page asks for fails to
load and that nothing comes from another host (the book works offline); a screenshot of every page is kept in
_build/screenshots/<page>.png.

The browser is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: NUL-terminated JSON on
file descriptors 3 and 4), so the standard library is all we need: no websocket client, no browser download.
Nothing is injected into the book: each page is loaded as it is, then a script evaluated in it reports what it sees.
"""
import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import toc_files

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.book, pytest.mark.browser]
SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDTH, HEIGHT = 1280, 1600
PAGE_TIMEOUT = 30  # seconds for one page to load, typeset its math and load its images
INSTALL_HINT = "Chromium not found (looked for $CHROMIUM, chromium, chromium-browser): run `make install-browser`"
# What Chromium must not do on a test machine: no sandbox (we may be root in a container), no GPU, no network
# of its own (updates, sync, QUIC), no proxy for 127.0.0.1.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--no-proxy-server", "--hide-scrollbars", "--mute-audio", f"--window-size={WIDTH},{HEIGHT}"]


def book_pages(html: Path) -> list[str]:
    "Every page of the book in `html` (paths relative to it, without .html): the toc's and any other page built."
    pages = []
    for path in sorted(html.rglob("*.html")):
        rel = path.relative_to(html)
        if any(part.startswith(("_", ".")) for part in rel.parts) or rel.as_posix() in ("search.html", "genindex.html"):
            continue  # Sphinx's own pages, _static/_sources/_images, and stray dot-directories (.pytest_cache)
        pages.append(rel.with_suffix("").as_posix())
    return pages


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    "A directory served over HTTP on 127.0.0.1 (a free port) from a thread: file:// pages are not allowed to do enough."
    def __init__(self, directory: Path):
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Browser:
    "Headless Chromium, driven with the DevTools protocol over a pipe; one tab that visits pages in turn."
    def __init__(self, exe: str, profile: Path):
        to_chrome, self._to_chrome = os.pipe()  # Chromium reads commands from its fd 3 ...
        self._from_chrome, from_chrome = os.pipe()  # ... and writes answers and events to its fd 4
        # numbers >= 10 so that `3<&N 4>&M` cannot clobber one with the other (bash: dash takes only fds 0-9)
        a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome, from_chrome))
        os.close(to_chrome), os.close(from_chrome)
        self.log = profile / "chromium.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [shutil.which("bash") or "/bin/bash", "-c", f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', exe, *FLAGS,
                 f"--user-data-dir={profile / 'profile'}", "--remote-debugging-pipe", "about:blank"],
                pass_fds=(a, b), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        os.close(a), os.close(b)
        self._buf, self._id, self.events, self.session = b"", 0, [], None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    def _crashed(self, what: str) -> RuntimeError:
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return RuntimeError(f"Chromium {what} (exit code {self.proc.poll()}); its log ends:\n{tail}")

    def send(self, method: str, wait: float = PAGE_TIMEOUT, **params):
        "Send one command to the tab (or to the browser before there is one) and return its result; events are kept."
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        try:
            os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise self._crashed("is gone") from None
        deadline = time.monotonic() + wait
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                    raise TimeoutError(f"Chromium did not answer {method} within {wait} s")
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise self._crashed(f"closed the pipe while we waited for {method}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            if "method" in reply:
                self.events.append(reply)

    def evaluate(self, expression: str, timeout: float = PAGE_TIMEOUT):
        "Value of a JS expression (awaited if it is a promise) in the page."
        result = self.send("Runtime.evaluate", wait=timeout + 5, expression=expression, awaitPromise=True,
                           returnByValue=True, timeout=timeout * 1000)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close", wait=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome), os.close(self._from_chrome)


# Evaluated in every page once it is loaded: waits for MathJax to finish its first typesetting and for every image
# (lazy ones are asked to load now), then reports what a reader would see.
INSPECT = r"""
(async (timeoutMs) => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const deadline = performance.now() + timeoutMs;
  const within = p => Promise.race([p, sleep(Math.max(0, deadline - performance.now())).then(() => 'timeout')]);
  while (document.readyState !== 'complete' && performance.now() < deadline) await sleep(50);
  const report = {url: location.href, title: document.title, readyState: document.readyState};
  // MathJax 3: the page's config object is replaced by the real MathJax, whose startup.promise resolves after the
  // first typesetting of the page.
  const hasMathJaxScript = !!document.querySelector('script[src*="mathjax" i]');
  if (hasMathJaxScript) {
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && performance.now() < deadline) await sleep(50);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { report.mathjaxWait = await within(MathJax.startup.promise.then(() => 'done')); }
      catch (e) { report.mathjaxError = String(e); }
    }
  }
  report.mathjax = (window.MathJax && MathJax.version) || null;
  report.mathjaxScripts = [...document.querySelectorAll('script[src*="mathjax" i]')].map(s => s.src);
  const mathElements = [...document.querySelectorAll('.math')];
  report.mathElements = mathElements.length;
  report.untypeset = mathElements.filter(el => !el.querySelector('mjx-container'))
                                 .slice(0, 5).map(el => el.textContent.trim().slice(0, 80));
  report.mjxContainers = document.querySelectorAll('mjx-container').length;
  report.mathErrors = [...document.querySelectorAll('mjx-merror')]
                        .slice(0, 5).map(el => el.getAttribute('data-mjx-error') || el.textContent.slice(0, 80));
  // raw TeX delimiters in text a reader sees (code and MathJax's own output are not prose)
  const skip = 'script, style, noscript, template, textarea, pre, code, kbd, samp, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
  report.rawTex = [];
  for (let node; (node = walker.nextNode());) {
    const text = node.nodeValue;
    if (!/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/.test(text)) continue;
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    const at = text.search(/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/);
    report.rawTex.push(text.slice(Math.max(0, at - 30), at + 50).replace(/\s+/g, ' '));
  }
  // every image, lazy ones included, once it has loaded or failed
  const images = [...document.images];
  await within(Promise.all(images.map(img => {
    if (img.loading === 'lazy') img.loading = 'eager';
    return img.complete ? null : new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });
  })));
  report.images = images.map(img => ({src: img.currentSrc || img.src || img.outerHTML.slice(0, 120),
                                      ok: img.complete && img.naturalWidth > 0,
                                      size: [img.naturalWidth, img.naturalHeight]}));
  if (document.fonts) await within(document.fonts.ready);
  window.scrollTo(0, 0);
  await sleep(100);
  return report;
})
"""


# Evaluated after INSPECT: how much of the page a reader sees as code, and what is wrong with its figures.
# Code = the notebook code-cell inputs that are displayed (a collapsed "Show code cell source" toggle hides its input:
# an element inside a closed <details> has no box); page = the document's full scroll height. Prose code blocks
# (```bash fences) are not cell inputs and do not count.
LAYOUT = r"""
(() => {
  const shown = el => el.getClientRects().length > 0 && !el.closest('details:not([open])');
  const height = el => el.getBoundingClientRect().height;
  const inputs = [...document.querySelectorAll('.cell_input')];
  const visible = inputs.filter(shown);
  const page = Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);
  const code = visible.reduce((sum, el) => sum + height(el), 0);
  const article = document.querySelector('article') || document.querySelector('main') || document.body;
  const uncaptioned = [...article.querySelectorAll('img')]
    .filter(img => !(img.closest('figure') && img.closest('figure').querySelector('figcaption')))
    .map(img => (img.getAttribute('src') || '').split('/').pop());
  return {code_px: Math.round(code), page_px: page, share: page ? code / page : 0,
          code_cells: inputs.length, visible_code_cells: visible.length, uncaptioned_images: uncaptioned};
})()
"""


def visit(browser: Browser, url: str, screenshot: Path | None) -> dict:
    "Load `url` in the browser's tab, report on it (see INSPECT) and the requests it made, save a screenshot."
    browser.events.clear()
    browser.send("Page.navigate", url=url)
    report = None
    for _ in range(5):  # a redirect (the root index.html is one) replaces the document we are evaluating in
        try:
            report = browser.evaluate(f"{INSPECT}({PAGE_TIMEOUT * 1000 - 5000})")
            break
        except RuntimeError as e:
            if not any(word in str(e) for word in ("navigated", "context", "destroyed")):
                raise
            time.sleep(0.5)
    if report is None:
        raise RuntimeError(f"{url}: the page kept navigating away")
    report["layout"] = browser.evaluate(LAYOUT)
    requests, report["failedRequests"], report["otherHosts"] = {}, [], []
    host = url.split("/")[2]
    for event in browser.events:
        params = event.get("params", {})
        if event["method"] == "Network.requestWillBeSent":
            if params["request"]["url"] == f"http://{host}/favicon.ico":
                continue  # the browser's own guess, not something a page asks for (Sphinx links no icon here)
            requests[params["requestId"]] = req_url = params["request"]["url"]
            if req_url.startswith(("http:", "https:", "ws:", "wss:")) and req_url.split("/")[2] != host:
                report["otherHosts"].append(req_url)
        elif event["method"] == "Network.responseReceived" and params["response"]["status"] >= 400 \
                and params["requestId"] in requests:
            report["failedRequests"].append(f"{params['response']['url']} (HTTP {params['response']['status']})")
        elif event["method"] == "Network.loadingFailed" and not params.get("canceled") and params["requestId"] in requests:
            report["failedRequests"].append(f"{requests.get(params['requestId'], '?')} ({params.get('errorText')})")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        screenshot.write_bytes(base64.b64decode(data))
    return report


def problems(report: dict, expect_math: bool) -> list[str]:
    "What is wrong with a page, from its report; an empty list when nothing is."
    found = []
    if report["readyState"] != "complete":
        found.append(f"the page did not finish loading (readyState {report['readyState']})")
    if expect_math or report["mathElements"]:
        if not report["mathjax"]:
            found.append(f"MathJax did not load (scripts: {report['mathjaxScripts'] or 'none'})")
        elif report.get("mathjaxWait") != "done":
            found.append(f"MathJax did not finish typesetting ({report.get('mathjaxError') or 'timed out'})")
        if report["mjxContainers"] == 0:
            found.append("no typeset math (no mjx-container) on a page with math")
    if report["untypeset"]:
        found.append(f"{len(report['untypeset'])}+ math elements not typeset, e.g. {report['untypeset']}")
    if report["mathErrors"]:
        found.append(f"MathJax errors: {report['mathErrors']}")
    if report["rawTex"]:
        found.append(f"raw TeX delimiters in the text: {report['rawTex'][:5]}")
    for img in report["images"]:
        if not img["ok"]:
            found.append(f"image does not load: {img['src']}")
    for failed in report["failedRequests"]:
        found.append(f"request failed: {failed}")
    for url in report["otherHosts"]:
        found.append(f"fetched from another host (the book must work offline): {url}")
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.fail(INSTALL_HINT)  # not a skip: `make test` installs it, so a missing browser is a broken set-up
    b = Browser(exe, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def visits(built_book, browser):
    "Every page of the book, visited once: page -> (report, screenshot)."
    server = Server(built_book)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    try:
        visited = {page: (visit(browser, server.url + page + ".html", SCREENSHOTS / f"{page}.png"), SCREENSHOTS / f"{page}.png")
                   for page in book_pages(built_book)}
    finally:
        server.close()
    # what the browser saw on each page, next to the screenshots, for whoever looks into a failure
    (SCREENSHOTS / "reports.json").write_text(json.dumps({page: report for page, (report, _) in visited.items()}, indent=1))
    return visited


def page_has_math(html: Path, page: str) -> bool:
    "Whether a page's source has math: Sphinx marks it class=\"math\"; a $$ or {math} in the source counts too."
    if 'class="math' in (html / f"{page}.html").read_text(encoding="utf-8"):
        return True
    sources = list((html / "_sources").glob(f"{page}.*"))
    return any(s.suffix != ".ipynb" and ("$$" in (t := s.read_text(errors="replace")) or "{math}" in t) for s in sources)


def test_every_toc_page_was_built(built_book):
    missing = [doc for doc in toc_files() if not (built_book / f"{doc}.html").exists()]
    assert not missing, f"pages of _toc.yml missing from the build: {missing}"


@pytest.mark.parametrize("doc", toc_files())
def test_toc_page_in_browser(built_book, visits, doc):
    assert doc in visits, f"{doc} is in _toc.yml but {doc}.html was not built"
    report, _ = visits[doc]
    found = problems(report, page_has_math(built_book, doc))
    assert not found, f"{doc}: " + "; ".join(found)


def test_other_pages_in_browser(built_book, visits):
    "Pages built outside the toc (the root index.html, which redirects to the front page)."
    others = {page: problems(report, page_has_math(built_book, page))
              for page, (report, _) in visits.items() if page not in toc_files()}
    assert not any(others.values()), {page: found for page, found in others.items() if found}


def test_screenshots(visits):
    from PIL import Image
    for page, (_, png) in visits.items():
        assert png.exists(), f"{page}: no screenshot"
        assert png.stat().st_size > 5000, f"{page}: screenshot {png} is only {png.stat().st_size} bytes"
        with Image.open(png) as im:
            assert im.size == (WIDTH, HEIGHT), f"{page}: screenshot is {im.size}"
            extrema = im.convert("RGB").getextrema()
            assert any(lo != hi for lo, hi in extrema), f"{page}: screenshot {png} is a single colour"


def test_math_heavy_pages_are_typeset_by_the_local_mathjax(visits):
    for doc in ("book/appendix_b", "nbs/01_schedule", "nbs/02_weighting"):
        report, _ = visits[doc]
        assert report["mjxContainers"] >= 2 and report["mathjax"], f"{doc}: {report['mjxContainers']} typeset formulas"
        assert all("/_static/mathjax/" in src and src.startswith("http://127.0.0.1") for src in report["mathjaxScripts"])


def test_checker_catches_a_broken_image_and_raw_math(tmp_path, browser):
    "The checks can fail: a page with a missing image, raw $$x$$ and a math element but no MathJax."
    from PIL import Image
    Image.new("RGB", (40, 20), (200, 30, 30)).save(tmp_path / "good.png")
    (tmp_path / "bad.html").write_text(
        '<!doctype html><html><head><title>bad</title></head><body><p>Energy: $$x^2$$ and \\(y\\).</p>'
        '<div class="math">\\[z\\]</div><img src="missing.png" alt="missing"><img src="good.png" alt="good">'
        '<pre>$$ in code is fine</pre></body></html>')
    server = Server(tmp_path)
    try:
        report = visit(browser, server.url + "bad.html", tmp_path / "bad.png")
    finally:
        server.close()
    found = problems(report, expect_math=True)
    text = "\n".join(found)
    assert "image does not load" in text and "missing.png" in text, found
    assert "raw TeX delimiters" in text and "$$x^2$$" in text, found
    assert "MathJax did not load" in text and "not typeset" in text, found
    assert "missing.png (HTTP 404)" in text, found
    assert "good.png" not in text.replace("missing.png", ""), found  # the image that loads is not reported
    assert not any("$$ in code" in raw for raw in report["rawTex"]), report["rawTex"]


# Pages that read as prose with code in support (the method and its reproduction): at most this share of their
# height is visible code; the implementation pages and recipes are code by nature and are only measured.
CODE_SHARE_LIMIT = 0.20


def toc_part(*captions: str) -> list[str]:
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ch["file"] for part in toc["parts"] if part["caption"] in captions for ch in part["chapters"]]


@pytest.fixture(scope="module")
def code_share(visits) -> dict:
    "Per page: visible code height / page height, written to _build/screenshots/code_share.json with the totals."
    pages = {page: report["layout"] for page, (report, _) in visits.items()}
    def total(docs):
        code = sum(pages[d]["code_px"] for d in docs if d in pages)
        height = sum(pages[d]["page_px"] for d in docs if d in pages)
        return {"pages": len([d for d in docs if d in pages]), "code_px": code, "page_px": height,
                "share": code / height if height else 0.0}
    parts = {caption: toc_part(caption) for caption in ("Method", "Reproduction", "Implementation", "Recipes")}
    summary = {"limit": CODE_SHARE_LIMIT, "pages": pages,
               "totals": {**{c: total(d) for c, d in parts.items()}, "all": total(list(pages))}}
    (SCREENSHOTS / "code_share.json").write_text(json.dumps(summary, indent=1))
    return summary


@pytest.mark.parametrize("doc", toc_part("Method", "Reproduction"))
def test_code_is_at_most_a_fifth_of_a_method_or_reproduction_page(code_share, doc):
    layout = code_share["pages"][doc]
    assert layout["share"] <= CODE_SHARE_LIMIT, (
        f"{doc}: {layout['share']:.0%} of the page's height is visible code ({layout['visible_code_cells']} of "
        f"{layout['code_cells']} code cells shown; tag plotting and plumbing hide-input, imports and tests remove-cell)")


@pytest.mark.parametrize("doc", toc_part("Method", "Reproduction"))
def test_every_figure_has_a_caption(visits, doc):
    uncaptioned = visits[doc][0]["layout"]["uncaptioned_images"]
    assert not uncaptioned, (f"{doc}: {len(uncaptioned)} image(s) not in a captioned figure (give the cell a "
                             f"mystnb figure caption or use a glue:figure): {uncaptioned}")


def test_code_share_measure_can_fail(tmp_path, browser):
    "A page that is all code measures near 100 %; a collapsed hide-input toggle counts as hidden; a bare img is caught."
    cell = '<div class="cell_input"><pre>' + "x = 1\n" * 120 + "</pre></div>"
    (tmp_path / "code.html").write_text(f"<!doctype html><html><body style='margin:0'><article>{cell}"
                                        "<img src='a.png'></article></body></html>")
    (tmp_path / "hidden.html").write_text(f"<!doctype html><html><body><article><p>Prose.</p><details><summary>Show"
                                          f"</summary>{cell}</details><figure><img src='a.png'><figcaption>A."
                                          "</figcaption></figure></article></body></html>")
    from PIL import Image
    Image.new("RGB", (40, 20), (30, 30, 200)).save(tmp_path / "a.png")
    server = Server(tmp_path)
    try:
        code = visit(browser, server.url + "code.html", None)["layout"]
        hidden = visit(browser, server.url + "hidden.html", None)["layout"]
    finally:
        server.close()
    assert code["share"] > 0.8 and code["visible_code_cells"] == 1 and code["uncaptioned_images"] == ["a.png"], code
    assert hidden["share"] == 0 and hidden["code_cells"] == 1 and hidden["uncaptioned_images"] == [], hidden
