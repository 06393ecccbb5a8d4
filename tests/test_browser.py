"""The built book in headless Chromium: every page loads cleanly and offline.

The site is served on localhost and every page is opened once. Requests that
leave localhost are blocked and recorded, so MathJax must typeset from the copy
served with the site. The checks: no console errors or uncaught exceptions, no
request that failed or left localhost, math typeset (MathJax elements present,
no raw TeX delimiters left, no MathJax errors), every image loaded, every
internal link and anchor resolves, and nothing is wider than the text column at a
1280 px wide window (no code cell, output, table, figure or equation whose content
is wider than the main column, and no horizontal scrolling of the page).

Chromium is Debian's package (/usr/bin/chromium), driven through the DevTools
protocol by Playwright's Python package (its own browser downloads are not used).
On CI (``CI`` set) a missing Chromium fails the test instead of skipping it.
"""

import pytest

# The book extra (pip install -e '.[test,book]'); with `test` alone these skip.
pytest.importorskip("jupyter_book", reason="the book extra is not installed")

import functools
import http.server
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from book_build import HTML, build

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]

VIEWPORT = {"width": 1280, "height": 900}

# Run in the page once MathJax (if the page loads it) has finished typesetting.
PAGE_STATE = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise)
        await MathJax.startup.promise;
    const text = document.body.innerText;
    return {
        sourceMath: document.querySelectorAll('.math').length,
        typeset: document.querySelectorAll('mjx-container').length,
        mathErrors: document.querySelectorAll('mjx-merror').length,
        rawTex: ['$$', '\\\\(', '\\\\)', '\\\\['].filter(d => text.includes(d)),
        brokenImages: Array.from(document.images)
            .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src),
        images: document.images.length,
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
        overflow: overflowing(),
    };

    // Elements of the main column whose content is wider than the column's
    // content box (a <pre> or table wrapper that scrolls counts: its scrollWidth
    // is its content's width), and the page itself scrolling sideways.
    function overflowing() {
        const col = document.querySelector('article.bd-article') ||
                    document.querySelector('main') || document.body;
        const style = getComputedStyle(col);
        const width = col.clientWidth - parseFloat(style.paddingLeft) -
                      parseFloat(style.paddingRight);
        const found = [];
        const doc = document.documentElement;
        if (doc.scrollWidth > doc.clientWidth + 1)
            found.push(`the page scrolls sideways: ${doc.scrollWidth} px > ${doc.clientWidth} px`);
        const sel = 'pre, table, img, svg, mjx-container, .cell_output, .output, ' +
                    'figure, .highlight, .math, .MathJax, blockquote, dl, p, li';
        for (const el of col.querySelectorAll(sel)) {
            if (!el.getClientRects().length) continue;   // hidden (tabs, dropdowns)
            const w = Math.max(el.scrollWidth, el.getBoundingClientRect().width);
            if (w > width + 1) {
                const text = (el.textContent || el.getAttribute('src') || '')
                    .trim().split('\\n')[0].slice(0, 70);
                const cls = (el.className.baseVal ?? el.className) ||
                            `in ${el.parentElement.closest('[class]')?.className}`;
                found.push(`<${el.tagName.toLowerCase()} class="${cls}"> ${Math.round(w)} px` +
                           ` > column ${Math.round(width)} px: ${text}`);
            }
        }
        return found;
    }
}"""


def _browser_or_reason():
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not installed: {exc}"
    return None


@pytest.fixture(scope="module")
def server():
    result = build()
    assert result.returncode == 0, (result.stdout[-5000:], result.stderr[-5000:])

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def visits(server, tmp_path_factory):
    """Open every page once; per page, what the browser saw."""
    reason = _browser_or_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run on CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    pages = sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if "_static" not in p.relative_to(HTML).parts
    )  # theme fragments, not pages
    results = {}
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport=VIEWPORT,
        )
        for name in pages:
            results[name] = _visit(context, server, name)
        context.close()
    return results


def _visit(context, server, name):
    seen = {"errors": [], "external": [], "failed": []}

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:  # offline: nothing may leave localhost
            seen["external"].append(r.request.url)
            r.abort()

    page = context.new_page()
    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("requestfailed", lambda req: seen["failed"].append(req.url))
    page.on("response", lambda resp: resp.status >= 400 and seen["failed"].append(resp.url))
    page.goto(server + name, wait_until="load")
    redirect = re.search(
        r'http-equiv="Refresh" content="0; url=([^"]+)"', (HTML / name).read_text(), re.IGNORECASE
    )
    if redirect:  # Jupyter Book's index.html forwards to the root chapter
        page.wait_for_url(urllib.parse.urljoin(server + name, redirect[1]), wait_until="load")
    seen.update(page.evaluate(PAGE_STATE))
    page.close()
    return seen


def _bad(visits, check):
    return {name: found for name, seen in visits.items() if (found := check(seen))}


def test_every_page_was_visited(visits):
    assert "chapters/00_intro.html" in visits and len(visits) >= 9


def test_no_console_errors(visits):
    assert _bad(visits, lambda seen: seen["errors"]) == {}


def test_nothing_fetched_from_the_network_or_missing(visits):
    assert _bad(visits, lambda seen: seen["external"]) == {}
    assert _bad(visits, lambda seen: seen["failed"]) == {}


def test_math_is_typeset_offline(visits):
    with_math = {n: s for n, s in visits.items() if s["sourceMath"]}
    assert "chapters/02_jacobian_sympy.html" in with_math
    assert _bad(with_math, lambda seen: seen["typeset"] == 0) == {}
    assert _bad(with_math, lambda seen: seen["mathErrors"]) == {}
    assert _bad(visits, lambda seen: seen["rawTex"]) == {}


def test_images_load(visits):
    assert sum(seen["images"] for seen in visits.values()) >= 4  # the chapters' figures
    assert _bad(visits, lambda seen: seen["brokenImages"]) == {}


def test_internal_links_resolve(visits, server):
    targets = {}
    for name, seen in visits.items():
        for link in seen["links"]:
            url, _, fragment = link.partition("#")
            if url.startswith(server):
                targets.setdefault(url, set()).add((fragment, name))
    broken = []
    for url, uses in sorted(targets.items()):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                status, body = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, ""
        if status != 200:
            broken.append((url, status))
            continue
        ids = set(re.findall(r'\bid="([^"]+)"', body))
        broken += [
            (f"{url}#{frag}", f"no such anchor (linked from {name})")
            for frag, name in sorted(uses)
            if frag and urllib.parse.unquote(frag) not in ids
        ]
    assert len(targets) >= 9 and broken == []


def test_nothing_wider_than_the_text_column(visits):
    """At a 1280 px window, no page scrolls sideways and no element of the main
    column (code cell, output, table, figure, equation) is wider than the column.
    The failure names each page and element, with its width and first text."""
    bad = _bad(visits, lambda seen: seen["overflow"])
    assert bad == {}, "\n".join(
        f"{page}:\n  " + "\n  ".join(found) for page, found in sorted(bad.items())
    )
