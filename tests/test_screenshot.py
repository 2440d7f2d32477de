"""The demo reports, English and Chinese, as a reader sees them in headless Chromium.

Each report is opened in Chromium under a fontconfig that has no system CJK font (as
on a fresh machine), through the DevTools protocol on a pipe (standard library only).
A full-page screenshot is kept under the test's tmp dir; its path is printed. The
tests check that the summary, the charts and the tables are drawn, and that no
character is drawn as an empty box: Chromium names the font each element's text was
drawn with, and every Chinese character must come from the embedded subset.

Skipped, saying so, when no Chromium binary is found (.ci/run installs Debian's).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crmnb.present.fonts import CJK_FAMILY

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1200, 900
HAN = 0x4E2D  # 中: a font holding it is a CJK font


def is_cjk(ch: str) -> bool:
    """Return whether a character needs a Chinese font (CJK ideographs, kana, full-width forms…)."""
    return ord(ch) >= 0x2E80 and not 0xFE00 <= ord(ch) <= 0xFE0F


# --------------------------------------------------------------------------- a font set without CJK
def _font_files() -> list[Path]:
    if shutil.which("fc-list"):
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=False)
        files = {Path(line) for line in out.stdout.splitlines() if line.strip()}
    else:
        roots = [
            Path("/usr/share/fonts"),
            Path("/usr/local/share/fonts"),
            Path.home() / ".fonts",
            Path.home() / ".local/share/fonts",
        ]
        files = {p for r in roots if r.is_dir() for p in r.rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".ttc")}
    return sorted(p for p in files if p.is_file())


def _has_han(path: Path) -> bool:
    from fontTools.ttLib import TTCollection, TTFont

    try:
        fonts = TTCollection(str(path)).fonts if path.suffix.lower() == ".ttc" else [TTFont(str(path), lazy=True)]
        return any(HAN in (f.getBestCmap() or {}) for f in fonts)
    except Exception:
        return True


def fontconfig_without_cjk(folder: Path) -> dict[str, str]:
    """Return an environment whose fontconfig sees the machine's fonts minus every font with Chinese glyphs.

    The system's alias rules stay (Arial is Liberation Sans…), as on a real machine.
    """
    fonts = folder / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    kept = 0
    for i, path in enumerate(_font_files()):
        if not _has_han(path):
            (fonts / f"{i:04d}-{path.name}").symlink_to(path)
            kept += 1
    conf = folder / "fonts.conf"
    include = '<include ignore_missing="yes">/etc/fonts/conf.d</include>' if Path("/etc/fonts/conf.d").is_dir() else ""
    conf.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
        f"<dir>{fonts}</dir><cachedir>{folder / 'cache'}</cachedir>{include}</fontconfig>\n",
        encoding="utf-8",
    )
    env = dict(os.environ, FONTCONFIG_FILE=str(conf))
    if shutil.which("fc-list"):
        seen = subprocess.run(
            ["fc-list", f":charset={HAN:x}", "family"], capture_output=True, text=True, env=env, check=False
        ).stdout.strip()
        assert not seen, f"the test's fontconfig ({conf}) still has CJK fonts: {seen}"
    assert kept, "no font without CJK glyphs found for Chromium to draw Latin text with"
    return env


# --------------------------------------------------------------------------- DevTools over a pipe
def _readable(fd: int, timeout: float) -> bool:
    """Return whether ``fd`` has data within ``timeout`` seconds (epoll: select() fails on descriptors past 1024,
    which a long test session reaches)."""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        return bool(sel.select(timeout))


class DevTools:
    """Chromium driven through --remote-debugging-pipe: commands on fd 3, answers on fd 4, NUL-separated JSON."""

    def __init__(self, exe: str, env: dict[str, str], profile: Path, timeout: float = 60.0):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            f"--window-size={WIDTH},{HEIGHT}",
            "about:blank",
        ]
        # Chromium reads fd 3 and writes fd 4: a small Python step puts the pipe ends there, then becomes Chromium
        hop = (
            "import fcntl, os, sys; r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]); "
            "os.dup2(r, 3); os.dup2(w, 4); os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.log = profile.parent / "chromium.log"
        self._logfile = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", hop, str(to_chrome_r), str(from_chrome_w), *args],
            pass_fds=(to_chrome_r, from_chrome_w),
            env=env,
            stdout=self._logfile,
            stderr=subprocess.STDOUT,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.timeout, self._buf, self._id, self._events = timeout, b"", 0, []
        self.session = None

    def close(self) -> None:
        try:
            self.call("Browser.close", browser=True)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
        self._logfile.close()

    def _message(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not _readable(self._from_chrome, left):
                raise TimeoutError(f"Chromium did not answer within {self.timeout:.0f} s (log: {self.log})")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe (log: {self.log})")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, browser: bool = False, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self._events.append(answer)

    def wait_for(self, event: str) -> dict:
        while True:
            for i, e in enumerate(self._events):
                if e.get("method") == event:
                    return self._events.pop(i)
            self._events.append(self._message())

    def open(self, url: str) -> None:
        pages = [t for t in self.call("Target.getTargets", browser=True)["targetInfos"] if t["type"] == "page"]
        target = (
            pages[0]["targetId"]
            if pages
            else self.call("Target.createTarget", browser=True, url="about:blank")["targetId"]
        )
        self.session = self.call("Target.attachToTarget", browser=True, targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("document.fonts.ready.then(() => document.fonts.size)")

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")


# --------------------------------------------------------------------------- one rendered report
FACTS_JS = """(() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top + scrollY, r.width, r.height]; };
  const s = document.querySelector('#summary');
  return {
    height: document.documentElement.scrollHeight,
    summary: s ? box(s) : null,
    summaryText: s ? s.innerText : '',
    images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, natural: i.naturalWidth,
                                            box: box(i)})),
    tables: [...document.querySelectorAll('table')].map(t => ({box: box(t), headers: t.querySelectorAll('th').length,
                                                              cells: t.querySelectorAll('td').length})),
  };
})()"""


@dataclass
class Rendered:
    """What Chromium drew for one report."""

    language: str
    html: str = field(repr=False)
    png: Path
    facts: dict = field(repr=False)
    boxes: list[tuple[str, str, list[dict]]] = field(default_factory=list, repr=False)  # element, text, fonts


def _text_fonts(tools: DevTools) -> list[tuple[str, str, list[dict]]]:
    """Return, for every element with Chinese characters in its own text, the fonts Chromium drew that text with."""
    tools.call("DOM.enable")
    tools.call("CSS.enable")
    root = tools.call("DOM.getDocument", depth=-1)["root"]
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        kids = node.get("children", [])
        own = "".join(k.get("nodeValue", "") for k in kids if k["nodeType"] == 3)
        if node["nodeType"] == 1 and node["nodeName"] not in ("STYLE", "TITLE", "HEAD") and any(map(is_cjk, own)):
            fonts = tools.call("CSS.getPlatformFontsForNode", nodeId=node["nodeId"])["fonts"]
            out.append((node["nodeName"], own.strip(), fonts))
        stack.extend(k for k in kids if k["nodeType"] == 1)
    return out


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip(
        f"NOT RUN: no Chromium binary on PATH (looked for {', '.join(BROWSERS)}), so the reports were not "
        "opened in a browser; install Debian's 'chromium' package (.ci/run does) to run these checks"
    )


@pytest.fixture(scope="module")
def browser_env(tmp_path_factory) -> dict[str, str]:
    return fontconfig_without_cjk(tmp_path_factory.mktemp("fontconfig"))


@pytest.fixture(scope="module")
def rendered(chromium, browser_env, demo_reports, tmp_path_factory) -> dict[str, Rendered]:
    from PIL import Image

    out = {}
    for lang, report in sorted(demo_reports.items()):
        folder = tmp_path_factory.mktemp(f"screenshot_{lang}")
        tools = DevTools(chromium, browser_env, folder / "profile")
        try:
            tools.open(report.resolve().as_uri())
            # the steps are collapsed under the brief: open them all, as a reader going through every step does
            tools.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            facts = tools.evaluate(FACTS_JS)
            height = min(int(facts["height"]), 30_000)
            shot = tools.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
            )
            # a chart below what one capture holds is captured on its own, at its place on the page
            for k, img in enumerate(facts["images"]):
                x, y, w, h = img["box"]
                if y + h > height and w > 0 and h > 0:
                    clip = tools.call(
                        "Page.captureScreenshot",
                        format="png",
                        captureBeyondViewport=True,
                        clip={"x": x, "y": y, "width": w, "height": h, "scale": 1},
                    )
                    img["clip"] = str(folder / f"chart_{lang}_{k}.png")
                    Path(img["clip"]).write_bytes(base64.b64decode(clip["data"]))
            boxes = _text_fonts(tools)
        finally:
            tools.close()
        png = folder / f"report_{lang}.png"
        png.write_bytes(base64.b64decode(shot["data"]))
        Image.open(png).verify()
        print(f"screenshot of the {lang} report: {png}")
        out[lang] = Rendered(lang, report.read_text(encoding="utf-8"), png, facts, boxes)
    return out


LANGS = pytest.mark.parametrize("lang", ["en", "zh"])


def _region(png: Path, box: list[float]):
    from PIL import Image

    x, y, w, h = (int(round(v)) for v in box)
    return Image.open(png).convert("RGB").crop((max(x, 0), max(y, 0), x + w, y + h))


def _ink(img) -> tuple[int, float]:
    """Return the number of distinct colours and the share of pixels unlike the most common one."""
    colours = img.getcolors(maxcolors=1 << 20) or []
    total = img.width * img.height
    return len(colours), 1 - max((n for n, _ in colours), default=total) / total


# --------------------------------------------------------------------------- the checks
@LANGS
def test_summary_is_drawn_at_the_top(rendered, lang):
    page = rendered[lang]
    s = page.facts["summary"]
    assert s, "the report has no executive summary (#summary)"
    assert s[1] < HEIGHT, f"the summary starts at {s[1]:.0f} px, below the first screen"
    assert s[3] > 150, f"the summary is only {s[3]:.0f} px high"
    colours, ink = _ink(_region(page.png, s))
    assert colours > 40 and ink > 0.04, (
        f"the summary region of {page.png} looks blank ({colours} colours, {ink:.1%} ink)"
    )
    top_colours, top_ink = _ink(_region(page.png, [0, 0, WIDTH, HEIGHT]))
    assert top_colours > 40 and top_ink > 0.1, f"the first screen of {page.png} looks blank"
    words = {
        "en": ("Executive summary", "Verdict", "Main findings", "Top actions"),
        "zh": ("执行摘要", "结论", "主要发现", "重点行动"),
    }[lang]
    for w in words:
        assert w in page.facts["summaryText"], f"'{w}' is not in the summary as drawn"


@LANGS
def test_every_chart_loads_at_a_readable_size_with_alt_text(rendered, lang):
    from PIL import Image

    page = rendered[lang]
    images = page.facts["images"]
    assert len(images) == len(re.findall(r"<img\b", page.html)) >= 6, f"{len(images)} charts drawn"
    for img in images:
        assert img["complete"] and img["natural"] > 0, f"a chart did not load: {img['alt'][:80]}"
        x, y, w, h = img["box"]
        assert w >= min(img["natural"], 600) * 0.95, f"a chart is shrunk to {w:.0f} px: {img['alt'][:80]}"
        drawn = Image.open(img["clip"]).convert("RGB") if "clip" in img else _region(page.png, img["box"])
        colours, ink = _ink(drawn)
        assert colours > 20 and ink > 0.03, f"a chart is blank in {img.get('clip', page.png)}: {img['alt'][:80]}"
        assert len(img["alt"]) > 20, f"a chart has no alt text worth reading: {img['alt']!r}"
        if lang == "zh":
            assert any(map(is_cjk, img["alt"])), f"alt text not in Chinese: {img['alt'][:80]}"
            english = re.findall(r"\b(chart|Funnel|Heatmap|go on|latest|forecast|band|rows|columns|CNY)\b", img["alt"])
            assert not english, f"English words {english} in a Chinese alt text: {img['alt'][:120]}"


@LANGS
def test_tables_are_drawn(rendered, lang):
    page = rendered[lang]
    tables = [t for t in page.facts["tables"] if t["box"][2] > 0 and t["box"][3] > 0]
    assert len(tables) == len(page.facts["tables"]), "a table takes no room on the page"
    assert all(t["headers"] > 0 for t in tables), "a table is drawn without its header row"
    filled = [t for t in tables if t["cells"] > 0]  # an empty table (e.g. no unreadable values) keeps its header
    assert len(filled) >= 10, f"only {len(filled)} tables with rows drawn"
    assert page.facts["height"] > 8000, f"the page is only {page.facts['height']} px long"
    first = filled[0]["box"]
    colours, ink = _ink(_region(page.png, first))
    assert colours > 10 and ink > 0.03, f"the first table is blank in {page.png}"


@LANGS
def test_no_chinese_character_is_drawn_as_an_empty_box(rendered, lang):
    """Every Chinese character must be drawn with the embedded font: no system font has it here."""
    page = rendered[lang]
    if lang == "zh":
        assert len(page.boxes) > 50, "the Chinese report should have Chinese text throughout"
    bad = []
    for element, text, fonts in page.boxes:
        from_embedded = sum(f["glyphCount"] for f in fonts if f["isCustomFont"])
        if from_embedded < sum(map(is_cjk, text)):
            bad.append(
                f"<{element.lower()}> {text[:40]!r} drawn with "
                + ", ".join(f"{f['postScriptName'] or f['familyName']} ({f['glyphCount']})" for f in fonts)
            )
    assert not bad, (
        f"{len(bad)} elements have Chinese text not drawn with the embedded font (empty boxes), "
        f"see {page.png}:\n" + "\n".join(bad[:15])
    )


# --------------------------------------------------------------------------- the embedded font, statically
FACE = re.compile(r"@font-face\s*\{(.*?)\}", re.S)


def _visible_text(doc: str) -> str:
    body = re.sub(r"<(style|script|title)\b.*?</\1>", " ", doc, flags=re.S | re.I)
    alts = " ".join(re.findall(r"""\balt=["']([^"']*)["']""", body))
    return html.unescape(re.sub(r"<[^>]+>", " ", body) + " " + alts)


def _ranges(value: str) -> set[int]:
    out: set[int] = set()
    for part in value.split(","):
        a, _, b = part.strip().upper().removeprefix("U+").partition("-")
        out.update(range(int(a, 16), int(b or a, 16) + 1))
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_embedded_font_covers_every_character_and_weight(demo_reports, lang):
    from fontTools.ttLib import TTFont

    doc = demo_reports[lang].read_text(encoding="utf-8")
    css = " ".join(re.findall(r"<style>(.*?)</style>", doc, re.S))
    needed = {c for c in _visible_text(doc) if is_cjk(c)}
    faces = [f for f in FACE.findall(css) if CJK_FAMILY in f]
    if not needed:
        assert not faces, "a report without Chinese should not carry the font"
        return
    assert faces, "the report has Chinese text but embeds no font for it"
    covered: set[int] = set()
    for face in faces:
        data = re.search(r"base64,([A-Za-z0-9+/=]+)", face)
        assert data, "the face is not embedded as a data: URL"
        cmap = set(TTFont(io.BytesIO(base64.b64decode(data.group(1)))).getBestCmap())
        ur = re.search(r"unicode-range\s*:\s*([^;}]+)", face)
        covered |= cmap & _ranges(ur.group(1)) if ur else cmap
        weight = re.search(r"font-weight\s*:\s*([^;}]+)", face)
        # one face with no weight (or a range reaching 700) serves bold too, emboldened by the browser
        assert not weight or int(weight.group(1).split()[-1]) >= 700, f"the face stops at weight {weight.group(1)}"
    missing = sorted(c for c in needed if ord(c) not in covered)
    assert not missing, f"{len(missing)} characters missing from the embedded subset: {''.join(missing[:40])}"
    assert not re.search(r"font-synthesis[\w-]*\s*:\s*none", css), "bold text needs the browser's emboldening"
    for stack in re.findall(r"font-family\s*:\s*([^;}]+)", FACE.sub("", css)):
        first = stack.split(",")[0].strip().strip("'\"")
        assert first == CJK_FAMILY, f"font-family {stack!r} does not start with the embedded face"
