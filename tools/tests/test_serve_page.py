"""The page at `/` in headless Chromium (Debian's), driven over the DevTools
protocol: a file uploaded through the page, its transcript read back from it; and
the microphone path, with Chromium's fake capture device playing a recording."""
from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from lasr_server import AUDIO, concat16k, DEFAULT_MODEL, REQUEST_TIMEOUT, Server, end_process, lasr_binary

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed (make test-deps installs it)")


class Page:
    """One tab of a headless Chromium, reached through the DevTools protocol."""

    def __init__(self, tmp_path, extra_args: tuple[str, ...] = ()):
        assert CHROMIUM, "chromium is not installed: make test-deps installs it"
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--disable-background-networking", "--window-size=1000,1400", "--remote-debugging-port=0", f"--user-data-dir={tmp_path / 'profile'}",
             *extra_args, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        port = None
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line and self.proc.poll() is not None:
                raise RuntimeError("chromium exited")
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        assert port, "chromium did not open its DevTools port"
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=60).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], open_timeout=60, max_size=None)
        self.ids = itertools.count(1)

    def call(self, method: str, **params):
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=REQUEST_TIMEOUT))
            if message.get("id") == i:
                assert "error" not in message, message
                return message["result"]

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = REQUEST_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"never true: {expression}")

    def close(self):
        try:
            self.ws.close()
        finally:
            end_process(self.proc)


def test_upload_through_the_page(tmp_path):
    sample = AUDIO / "02-weather.wav"
    expected = subprocess.run([str(lasr_binary()), "transcribe", "--model", str(DEFAULT_MODEL), str(sample)],
                              capture_output=True, text=True, check=True, timeout=REQUEST_TIMEOUT).stdout.strip()
    server = Server(tmpdir=tmp_path)
    page = Page(tmp_path)
    try:
        page.call("Page.enable")
        page.call("Network.enable")
        page.call("Page.navigate", url=server.base + "/")
        page.wait_for("document.readyState === 'complete' && document.querySelector('#model').options.length > 0")
        assert page.eval("document.querySelector('#model').value") == "default"
        document = page.call("DOM.getDocument")
        node = page.call("DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#file")
        page.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(sample)])
        page.eval("document.querySelector('#transcribe').click()")
        text = page.wait_for("document.querySelector('#transcript').textContent")
        assert text == expected
        words = page.eval("[...document.querySelectorAll('#words .word small')].map(e => e.textContent)")
        assert len(words) == len(expected.split()) and all(re.fullmatch(r"\d+\.\d\d–\d+\.\d\d", w) for w in words)
        assert page.eval("document.querySelectorAll('#heatmaps img').length") >= 1
        assert page.eval("[...document.querySelectorAll('#heatmaps img')].every(i => i.complete && i.naturalWidth > 0)")
        # Self-contained: every resource the page loaded came from the server itself.
        urls = page.eval("performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(server.base) or u.startswith("data:") for u in urls), urls
        shot = page.call("Page.captureScreenshot", format="png")
        (tmp_path / "page.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        page.close()
        assert server.stop() == 0


def word_errors(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` (edit distance over words, lowercased, no punctuation)."""
    ref, hyp = (re.sub(r"[^a-z' ]", "", t.lower()).split() for t in (reference, hypothesis))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def test_record_through_the_page(tmp_path):
    # The microphone is Chromium's fake capture device playing two recordings once
    # (1.5 s of silence after each, so the first is final while the second plays);
    # the page streams it over the WebSocket at the browser's own rate.
    wav = tmp_path / "mic.wav"
    concat16k([AUDIO / "02-weather.wav", AUDIO / "03-library.wav"], wav, pad_after=1.5)
    expected = " ".join(subprocess.run([str(lasr_binary()), "transcribe", "--model", str(DEFAULT_MODEL), str(AUDIO / f)],
                                       capture_output=True, text=True, check=True, timeout=REQUEST_TIMEOUT).stdout.strip()
                        for f in ("02-weather.wav", "03-library.wav"))
    server = Server(tmpdir=tmp_path)
    page = Page(tmp_path, ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                           f"--use-file-for-fake-audio-capture={wav}%noloop", "--autoplay-policy=no-user-gesture-required"))
    try:
        page.call("Page.enable")
        page.call("Page.navigate", url=server.base + "/")
        page.wait_for("document.readyState === 'complete' && document.querySelector('#model').options.length > 0")
        page.eval("document.querySelector('#record').click()")
        assert page.wait_for("document.querySelector('#status').textContent.startsWith('recording at')"), \
            page.eval("document.querySelector('#status').textContent")
        finals = "[...document.querySelectorAll('#live div:not(.partial)')]"
        # The first utterance is final while the audio still plays.
        page.wait_for(f"{finals}.length >= 1")
        assert page.eval("document.querySelector('#stop').disabled") is False
        # Both, then Stop: the page ends the stream and the server says done.
        page.wait_for(f"{finals}.length >= 2", timeout=REQUEST_TIMEOUT)
        page.eval("document.querySelector('#stop').click()")
        page.wait_for("document.querySelector('#status').textContent === 'stream ended'")
        # The server closes the socket right after "done"; the close must not overwrite it.
        time.sleep(1)
        assert page.eval("document.querySelector('#status').textContent") == "stream ended"
        words = page.eval(f"{finals}.flatMap(row => [...row.querySelectorAll('.word')].map(w => w.firstChild.textContent))")
        heard = " ".join(words)
        # Chromium resamples the file to its capture rate and the server back to 16 kHz,
        # so the text may differ from the file's own transcript where the model is unsure:
        # scored against what was said, the stream reads no more than a quarter of the
        # words worse than the files do.
        said = " ".join((AUDIO / f).with_suffix(".txt").read_text(encoding="utf-8").strip()
                        for f in ("02-weather.wav", "03-library.wav"))
        assert word_errors(said, heard) <= word_errors(said, expected) + 0.25, (said, expected, heard)
        times = page.eval(f"{finals}.flatMap(row => [...row.querySelectorAll('.word small')].map(s => s.textContent))")
        starts = [float(t.split("–")[0]) for t in times]
        assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] < 14, times
        assert server.health()["streams"] == 0
    finally:
        page.close()
        assert server.stop() == 0
