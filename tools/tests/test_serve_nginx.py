"""Two `lasr serve` instances behind nginx, configured by the very block that
docs/server.md shows (its addresses replaced by loopback ports): uploads through the
official openai client, a live stream through the WebSocket proxy, both instances
used, and every request still answered while one instance is down."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import openai
import pytest
from websockets.sync.client import connect

from lasr_server import (AUDIO, DEFAULT_MODEL, REQUEST_TIMEOUT, ROOT, Server, assert_same_finals, end_process,
                         lasr_binary, request)

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(NGINX is None and not os.environ.get("CI"),
                                reason="nginx is not installed (make test-deps installs it)")
FILES = sorted(AUDIO.glob("*.wav"))


def documented_config() -> str:
    """The ```nginx block of docs/server.md."""
    text = (ROOT / "docs" / "server.md").read_text()
    blocks = re.findall(r"```nginx\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/server.md should show exactly one nginx configuration"
    return blocks[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx in the foreground with the documented block, under `prefix`."""

    def __init__(self, prefix: Path, backends: list[int]):
        block = documented_config()
        upstreams = re.findall(r"^\s*server \S+:\d+ ", block, re.M)
        assert len(upstreams) == len(backends), upstreams
        for line, port in zip(upstreams, backends):
            block = block.replace(line, re.sub(r"server \S+:\d+", f"server 127.0.0.1:{port}", line), 1)
        self.port = free_port()
        block, n = re.subn(r"listen 80;", f"listen 127.0.0.1:{self.port};", block)
        assert n == 1
        prefix.mkdir(parents=True, exist_ok=True)
        temp = "".join(f"    {d}_temp_path {prefix / d};\n" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = prefix / "nginx.conf"
        conf.write_text(
            ("user root;\n" if os.geteuid() == 0 else "")  # its workers must read the temp folders under pytest's 0700 tmp
            + f"daemon off;\nmaster_process on;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    log_format upstream '$request $status $upstream_addr';\n"
            f"    access_log {prefix / 'access.log'} upstream;\n{temp}{block}}}\n")
        self.log = prefix / "error.log"
        self.access = prefix / "access.log"
        self.proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()} {self.log.read_text() if self.log.exists() else ''}")
            try:
                if request("GET", self.port, "/health", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("nginx never answered")

    def posts(self, count: int) -> list[str]:
        """The access log's upload lines (`request status upstreams`), once there are
        `count`: nginx writes a line just after its response, so it may lag the client."""
        deadline = time.monotonic() + 30
        while True:
            lines = [l for l in self.access.read_text().splitlines() if l.startswith("POST /v1/audio/transcriptions")]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def stop(self):
        end_process(self.proc)


def test_two_instances_behind_the_documented_nginx(tmp_path):
    texts = {}
    out = subprocess.run([str(lasr_binary()), "transcribe", "--model", str(DEFAULT_MODEL), *map(str, FILES)],
                         capture_output=True, text=True, check=True, timeout=REQUEST_TIMEOUT).stdout
    for line in out.splitlines():
        path, _, text = line.partition(": ")
        texts[Path(path).name] = text
    servers = [Server(tmpdir=tmp_path), Server(tmpdir=tmp_path)]
    proxy = None
    try:
        proxy = Nginx(tmp_path / "nginx", [s.port for s in servers])
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy.port}/v1", api_key="unused",
                               timeout=REQUEST_TIMEOUT, max_retries=0)
        assert [m.id for m in client.models.list()] == ["default"]
        for _ in range(2):
            for f in FILES:
                with open(f, "rb") as fh:
                    assert client.audio.transcriptions.create(model="default", file=fh).text == texts[f.name]
        # Both instances did some of the work (one at a time, least_conn takes them in turn).
        served = [line.split()[-1] for line in proxy.posts(2 * len(FILES))]
        assert len(served) == 2 * len(FILES)
        assert {f"127.0.0.1:{s.port}" for s in servers} == set(served), served

        # The live stream through the WebSocket proxy.
        with connect(f"ws://127.0.0.1:{proxy.port}/v1/audio/stream?model=default", open_timeout=60,
                     close_timeout=REQUEST_TIMEOUT) as ws:
            ws.send(FILES[1].read_bytes())
            ws.send("end")
            messages = [json.loads(m) for m in ws]
        assert messages[-1] == {"type": "done"}
        expected = [json.loads(l) for l in subprocess.run(
            [str(lasr_binary()), "stream", "--json", "--model", str(DEFAULT_MODEL)], input=FILES[1].read_bytes(),
            capture_output=True, check=True, timeout=REQUEST_TIMEOUT).stdout.decode().splitlines()]
        assert_same_finals([m for m in messages if m["type"] == "final"], expected)

        # One instance goes away: nginx sends every request to the other, retrying
        # there what it first sent to the one that is gone.
        assert servers[0].stop() == 0
        for f in FILES * 2:
            with open(f, "rb") as fh:
                assert client.audio.transcriptions.create(model="default", file=fh).text == texts[f.name]
        after = proxy.posts(4 * len(FILES))[2 * len(FILES):]
        assert len(after) == 2 * len(FILES) and all(line.endswith(f"127.0.0.1:{servers[1].port}") for line in after), after
        assert any(f"127.0.0.1:{servers[0].port}, " in line for line in after), after
    finally:
        if proxy:
            proxy.stop()
        for s in servers:
            s.stop()
