"""Starts the real `lasr serve` binary on a free loopback port for the tests, and
small HTTP helpers (stdlib only) for what the openai client cannot send."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "audio"
DEFAULT_MODEL = ROOT / "models" / "default"
TINY_WHISPER = ROOT / "Tests" / "LasrTests" / "Fixtures" / "tiny-whisper"
# Debug builds on a loaded 2-core machine are slow: every wait is generous.
START_TIMEOUT = 120
REQUEST_TIMEOUT = 600


def lasr_binary() -> Path:
    """$LASR_BIN, else the newest of the debug and release builds."""
    if os.environ.get("LASR_BIN"):
        return Path(os.environ["LASR_BIN"])
    built = [p for p in (ROOT / ".build" / "debug" / "lasr", ROOT / ".build" / "release" / "lasr") if p.exists()]
    if not built:
        raise RuntimeError("no lasr binary: run `swift build` first (or set LASR_BIN)")
    return max(built, key=lambda p: p.stat().st_mtime)


def assert_same_finals(got: list[dict], expected: list[dict], confidence_tolerance: float = 2e-3) -> None:
    """A stream's finals against `lasr stream --json`'s for the same audio: the same text, times
    and words, and word confidences within `confidence_tolerance`. Audio that arrives at
    another pace reaches the encoder in other blocks of frames, whose float sums run in
    another order; that can move a confidence's fourth decimal, never a word."""
    def without_confidence(messages):
        return [{k: ([{wk: wv for wk, wv in w.items() if wk != "confidence"} for w in v] if k == "words" else v)
                 for k, v in m.items() if k != "confidence"} for m in messages]

    assert without_confidence(got) == without_confidence(expected)
    for g, e in zip(got, expected):
        for gw, ew in zip(g.get("words", []), e.get("words", [])):
            assert abs(gw["confidence"] - ew["confidence"]) <= confidence_tolerance, (gw, ew)


def end_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Server:
    """One `lasr serve` process; `stop()` sends SIGTERM and returns its exit status."""

    def __init__(self, *args: str, models: list[Path] | None = None, tmpdir: Path | None = None, env: dict | None = None):
        self.tmpdir = tmpdir
        cmd = [str(lasr_binary()), "serve", "--host", "127.0.0.1", "--port", "0"]
        for m in models or [DEFAULT_MODEL]:
            cmd += ["--model", str(m)]
        cmd += list(args)
        environment = dict(os.environ, **(env or {}))
        if tmpdir is not None:
            environment["TMPDIR"] = str(tmpdir)
        self.stderr_path = (tmpdir or Path("/tmp")) / f"server-{uuid.uuid4().hex}.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
                                     env=environment)
        self.port = self._read_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.wait_ready()

    def _read_port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError(f"lasr serve exited ({self.proc.wait()}): {self.log()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        raise RuntimeError("lasr serve did not report its port")

    def wait_ready(self) -> dict:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lasr serve exited ({self.proc.returncode}): {self.log()}")
            status, _, body = request("GET", self.port, "/health")
            if status == 200:
                return json.loads(body)
            assert status == 503, body  # loading
            time.sleep(0.2)
        raise RuntimeError("lasr serve never became ready")

    def health(self) -> dict:
        return json.loads(request("GET", self.port, "/health")[2])

    def log(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=REQUEST_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


def multipart(fields: dict[str, str | list[str]], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "lasrtest" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{v}\r\n'.encode()
    for name, (filename, data) in files.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def request(method: str, port: int, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = REQUEST_TIMEOUT) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post_form(port: int, path: str, fields: dict, files: dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
    body, content_type = multipart(fields, files)
    return request("POST", port, path, body, {"Content-Type": content_type, **(headers or {})})


def transcribe(port: int, audio: Path | bytes, filename: str = "audio.wav", headers: dict | None = None, **fields):
    data = audio.read_bytes() if isinstance(audio, Path) else audio
    fields.setdefault("model", "default")
    return post_form(port, "/v1/audio/transcriptions", fields, {"file": (filename, data)}, headers)


def concat16k(files: list[Path], out: Path, pad_after: float = 0) -> bytes:
    """The files back to back as one 16 kHz mono s16le WAV (by sox; each is converted
    first, since sox joins only files of one rate), with `pad_after` s of silence after each."""
    parts = []
    for i, f in enumerate(files):
        part = out.with_name(f"{out.stem}-part{i}.wav")
        cmd = ["sox", str(f), "-r", "16000", "-c", "1", "-b", "16", str(part)]
        subprocess.run(cmd + (["pad", "0", str(pad_after)] if pad_after else []), check=True)
        parts.append(str(part))
    subprocess.run(["sox", *parts, str(out)], check=True)
    return out.read_bytes()
