"""`lasr serve` against the real binary on loopback: the official openai client in
every response format, every error case, limits, the queue, the API key, shutdown."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import openai
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from lasr_server import (AUDIO, concat16k, DEFAULT_MODEL, REQUEST_TIMEOUT, TINY_WHISPER, Server, lasr_binary, multipart, post_form,
                         request, transcribe)

FILES = sorted(AUDIO.glob("*.wav"))


def uploads_left(tmpdir: Path) -> list[Path]:
    """Files the server left in its private upload folders under TMPDIR."""
    return [p for d in tmpdir.glob("lasr-serve-*") for p in d.iterdir()]


def long_wav(tmp_path: Path, repeats: int = 3) -> bytes:
    """The sample files back to back, `repeats` times (16 kHz mono, by sox): speech to keep a worker busy."""
    return concat16k(FILES * repeats, tmp_path / f"long-{repeats}.wav")


@pytest.fixture(scope="module")
def tmpdir_module(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def server(tmpdir_module):
    s = Server("--max-upload-mb", "2", "--workers", "2", models=[DEFAULT_MODEL, TINY_WHISPER],
               tmpdir=tmpdir_module)
    yield s
    assert s.stop() == 0, s.log()
    assert not list(tmpdir_module.glob("lasr-serve-*")), "the upload folder outlived the server"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", timeout=REQUEST_TIMEOUT, max_retries=0)


@pytest.fixture(scope="module")
def cli_texts() -> dict[str, str]:
    """What `lasr transcribe` prints for each sample: the server must say the same."""
    out = subprocess.run([str(lasr_binary()), "transcribe", "--model", str(DEFAULT_MODEL), *map(str, FILES)],
                         capture_output=True, text=True, check=True, timeout=REQUEST_TIMEOUT).stdout
    texts = {}
    for line in out.splitlines():
        path, _, text = line.partition(": ")
        texts[Path(path).name] = text
    assert len(texts) == len(FILES), out
    return texts


def test_health_and_models(server, client):
    health = server.health()
    assert health["status"] == "ok" and health["models"] == ["default", "tiny-whisper"]
    assert [m.id for m in client.models.list()] == ["default", "tiny-whisper"]
    assert client.models.retrieve("default").owned_by == "lasr"


def test_every_sample_as_the_cli_transcribes_it(client, cli_texts, tmpdir_module):
    for f in FILES:
        with open(f, "rb") as fh:
            result = client.audio.transcriptions.create(model="default", file=fh)
        assert result.text == cli_texts[f.name], f.name
    assert not uploads_left(tmpdir_module)


def test_every_response_format(client, cli_texts):
    f = FILES[0]
    expected = cli_texts[f.name]

    def create(**kw):
        with open(f, "rb") as fh:
            return client.audio.transcriptions.create(model="default", file=fh, **kw)

    assert create(response_format="json").text == expected
    assert create(response_format="text").strip() == expected
    srt = create(response_format="srt")
    assert srt.startswith("1\n00:00:") and " --> " in srt
    assert " ".join(l for l in srt.splitlines() if l and "-->" not in l and not l.isdigit()) == expected
    vtt = create(response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n") and " --> " in vtt
    verbose = create(response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert verbose.text == expected and verbose.language == "english"
    assert verbose.duration == pytest.approx(4.9, abs=0.5)
    words = verbose.words
    assert " ".join(w.word for w in words) == expected
    for w in words:
        assert 0 <= w.start <= w.end <= verbose.duration + 1e-6
        assert 0 < w.model_extra["confidence"] <= 1  # lasr's word confidence
    assert [s.id for s in verbose.segments] == list(range(len(verbose.segments)))
    assert " ".join(s.text for s in verbose.segments) == expected
    only_segments = create(response_format="verbose_json")
    assert only_segments.segments and not only_segments.words


def test_whisper_model_is_served(server):
    # Random weights: the text is noise, but it is a transcript of the right shape.
    # The shortest sample, and temperature 1 (no fallback ladder): random weights decode slowly in debug.
    status, _, body = transcribe(server.port, AUDIO / "04-telephone.wav", model="tiny-whisper",
                                 response_format="verbose_json", temperature="1",
                                 **{"timestamp_granularities[]": ["word", "segment"]})
    assert status == 200, body
    doc = json.loads(body)
    assert doc["task"] == "transcribe" and "segments" in doc and "words" in doc
    # Each segment tells the temperature its window was decoded at and Whisper's no-speech probability.
    for segment in doc["segments"]:
        assert segment["temperature"] == 1.0 and 0 <= segment["no_speech_prob"] <= 1, segment


def test_native_model_decodes_as_without_a_prompt(client, cli_texts):
    # The native speller takes no text context: the field is accepted (OpenAI clients
    # send it) and changes nothing.
    with open(FILES[3], "rb") as fh:
        result = client.audio.transcriptions.create(model="default", file=fh, prompt="Names: Ada Lovelace.",
                                                    response_format="verbose_json")
    assert result.text == cli_texts[FILES[3].name]
    assert all(s.temperature == 0 and s.no_speech_prob == 0 for s in result.segments)


def test_other_rates_and_formats(server, cli_texts, tmp_path):
    # Any format libsndfile reads, at any rate: FLAC at 44.1 kHz stereo via sox.
    flac = tmp_path / "welcome.flac"
    subprocess.run(["sox", str(FILES[0]), "-r", "44100", "-c", "2", str(flac)], check=True)
    status, _, body = transcribe(server.port, flac, filename="welcome.flac")
    assert status == 200, body
    assert json.loads(body)["text"].split()[:3] == cli_texts[FILES[0].name].split()[:3]


def error_of(status_body):
    status, headers, body = status_body
    assert headers.get("content-type", "").startswith("application/json"), body
    err = json.loads(body)["error"]
    assert err["message"] and err["type"]
    return status, err


@pytest.mark.parametrize("fields, files, status, param, code", [
    ({"model": "default"}, {}, 400, "file", "invalid_value"),
    ({"model": "default"}, {"file": ("empty.wav", b"")}, 400, "file", "invalid_value"),
    ({"model": "default"}, {"file": ("notes.txt", b"this is not audio at all" * 40)}, 400, "file", "invalid_audio"),
    ({"model": "default"}, {"file": ("cut.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ")}, 400, "file", "invalid_audio"),
    ({}, {"file": ("a.wav", b"x")}, 400, "model", "invalid_value"),
    ({"model": "nope"}, {"file": ("a.wav", b"x")}, 404, "model", "model_not_found"),
    ({"model": "default", "response_format": "mp3"}, {"file": ("a.wav", b"x")}, 400, "response_format", "invalid_value"),
    ({"model": "default", "temperature": "hot"}, {"file": ("a.wav", b"x")}, 400, "temperature", "invalid_value"),
    ({"model": "default", "temperature": "1.5"}, {"file": ("a.wav", b"x")}, 400, "temperature", "invalid_value"),
    ({"model": "default", "timestamp_granularities[]": "char"}, {"file": ("a.wav", b"x")}, 400,
     "timestamp_granularities[]", "invalid_value"),
    ({"model": "default", "language": "de"}, {"file": ("a.wav", b"x")}, 400, "language", "invalid_value"),
    # The fixture Whisper model has no merges.txt: it cannot encode a prompt.
    ({"model": "tiny-whisper", "prompt": "Names: Ada."}, {"file": ("a.wav", b"x")}, 400, "prompt", "invalid_value"),
])
def test_bad_requests(server, fields, files, status, param, code):
    got, err = error_of(post_form(server.port, "/v1/audio/transcriptions", fields, files))
    assert (got, err["param"], err["code"]) == (status, param, code), err


def test_unreadable_audio_names_the_upload_not_a_server_path(server):
    _, err = error_of(transcribe(server.port, b"garbage" * 100, filename="mine.wav"))
    assert err["message"].startswith("mine.wav: ")
    assert "lasr-serve-" not in err["message"] and "/" not in err["message"].split(":")[0]


def test_not_multipart_and_unknown_routes(server):
    status, err = error_of(request("POST", server.port, "/v1/audio/transcriptions", b"{}",
                                   {"Content-Type": "application/json"}))
    assert status == 400 and err["code"] == "invalid_content_type"
    status, err = error_of(request("GET", server.port, "/v1/nothing"))
    assert status == 404
    status, _ = error_of(request("GET", server.port, "/v1/models/nope"))
    assert status == 404


def test_upload_over_the_limit_is_413(server, client):
    big = b"RIFF" + os.urandom(3 << 20)  # 3 MiB against --max-upload-mb 2
    status, err = error_of(transcribe(server.port, big))
    assert status == 413 and err["code"] == "file_too_large"
    with pytest.raises(openai.APIStatusError) as e:
        client.audio.transcriptions.create(model="default", file=("big.wav", big))
    assert e.value.status_code == 413
    assert server.health()["status"] == "ok"  # and the server is still there


def test_api_key(tmp_path):
    s = Server("--api-key", "s3cret-key", tmpdir=tmp_path)
    try:
        assert request("GET", s.port, "/health")[0] == 200  # no key needed
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer s3cret-ke"},
                        {"Authorization": "Basic s3cret-key"}):
            status, err = error_of(request("GET", s.port, "/v1/models", headers=headers))
            assert status == 401 and err["type"] == "authentication_error", headers
        status, err = error_of(transcribe(s.port, FILES[0]))
        assert status == 401
        assert request("GET", s.port, "/", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request("GET", s.port, "/?api_key=s3cret-key")[0] == 200
        good = openai.OpenAI(base_url=s.base + "/v1", api_key="s3cret-key", max_retries=0, timeout=REQUEST_TIMEOUT)
        assert [m.id for m in good.models.list()] == ["default"]
        with open(FILES[1], "rb") as fh:
            assert good.audio.transcriptions.create(model="default", file=fh).text
        bad = openai.OpenAI(base_url=s.base + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        # The live stream: told on the socket (a browser cannot read a refused upgrade's
        # status), then closed with 4401; with the key, by header or query, it streams.
        for url, headers in [("model=default", {}), ("model=default&api_key=nope", {}),
                             ("model=default", {"Authorization": "Bearer nope"})]:
            with connect(f"ws://127.0.0.1:{s.port}/v1/audio/stream?{url}", additional_headers=headers,
                         open_timeout=60) as ws:
                message = json.loads(ws.recv(timeout=60))
                assert (message["type"], message["code"]) == ("error", "invalid_api_key"), url
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=60)
                assert ws.close_code == 4401
        for url, headers in [("model=default&api_key=s3cret-key", {}),
                             ("model=default", {"Authorization": "Bearer s3cret-key"})]:
            with connect(f"ws://127.0.0.1:{s.port}/v1/audio/stream?{url}", additional_headers=headers,
                         open_timeout=60, close_timeout=REQUEST_TIMEOUT) as ws:
                ws.send(FILES[0].read_bytes())
                ws.send("end")
                messages = [json.loads(m) for m in ws]
            assert messages[-1] == {"type": "done"} and any(m["type"] == "final" for m in messages), url
    finally:
        assert s.stop() == 0


def test_full_queue_answers_503_and_the_rest_complete(tmp_path, cli_texts):
    s = Server("--workers", "1", "--queue", "1", tmpdir=tmp_path)
    try:
        n = 6
        results: list = [None] * n
        go = threading.Barrier(n)

        def one(i):
            go.wait()
            results[i] = transcribe(s.port, FILES[i % len(FILES)])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(REQUEST_TIMEOUT)
        statuses = [r[0] for r in results]
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
        for i, (status, headers, body) in enumerate(results):
            if status == 503:
                assert int(headers["retry-after"]) >= 1
                assert json.loads(body)["error"]["code"] == "server_busy"
            else:
                assert json.loads(body)["text"] == cli_texts[FILES[i % len(FILES)].name]
        wait_idle(s)  # the last worker finishes its bookkeeping just after its answer
        assert not uploads_left(tmp_path)
    finally:
        assert s.stop() == 0


def wait_idle(s: Server, timeout: float = REQUEST_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = s.health()
        if h["running"] == 0 and h["queued"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the server stayed busy: {s.health()}")


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response off a raw socket (Content-Length bodies only, as the server sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection mid-response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def raw_upload(fields: dict, name: str, data: bytes) -> bytes:
    body, content_type = multipart(fields, {"file": (name, data)})
    return (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_connection_is_kept_between_uploads(server, cli_texts):
    # A client's next upload goes on the same socket, after an error answered on it too:
    # an unknown model, and an upload over the limit refused by its Content-Length before
    # its body is read (the server must skip that body, not read it as the next request).
    big = b"RIFF" + os.urandom(3 << 20)  # against --max-upload-mb 2
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=REQUEST_TIMEOUT)
    try:
        for f, model, data in [(FILES[0], "default", None), (FILES[1], "nope", None), (FILES[1], "default", None),
                               (FILES[2], "default", big), (FILES[3], "default", None)]:
            sock.sendall(raw_upload({"model": model}, f.name, data or f.read_bytes()))
            status, headers, body = read_response(sock)
            assert headers.get("connection", "").lower() != "close"
            if model == "nope":
                assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"
            elif data is big:
                assert status == 413 and json.loads(body)["error"]["code"] == "file_too_large"
            else:
                assert status == 200 and json.loads(body)["text"] == cli_texts[f.name]
    finally:
        sock.close()


@pytest.mark.parametrize("kept", [False, True], ids=["first-upload", "on-a-kept-connection"])
def test_client_that_disconnects_frees_its_worker(tmp_path, cli_texts, kept):
    # The client goes away mid-decoding: its worker is freed, whether the upload was the
    # first on its connection or came after an answered one (which the close must not disturb).
    s = Server("--workers", "1", "--queue", "0", tmpdir=tmp_path)
    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=REQUEST_TIMEOUT)
        if kept:
            sock.sendall(raw_upload({"model": "default"}, FILES[0].name, FILES[0].read_bytes()))
            status, _, body = read_response(sock)
            assert status == 200 and json.loads(body)["text"] == cli_texts[FILES[0].name]
        sock.sendall(raw_upload({"model": "default"}, "long.wav", long_wav(tmp_path, 30)))
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while s.health()["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.health()["running"] == 1
        sock.close()
        wait_idle(s)
        assert s.health()["abandoned"] == 1  # stopped, not decoded to the end
        status, _, out = transcribe(s.port, FILES[0])
        assert status == 200 and json.loads(out)["text"] == cli_texts[FILES[0].name]
        assert not uploads_left(tmp_path)
    finally:
        assert s.stop() == 0


def test_request_timeout_is_504(tmp_path):
    s = Server("--workers", "1", "--timeout", "1", "--max-upload-mb", "100", tmpdir=tmp_path)
    try:
        # 38 minutes of speech: more than a second of decoding even for a release build on a fast CPU.
        status, err = error_of(transcribe(s.port, long_wav(tmp_path, 120), filename="long.wav"))
        assert status == 504 and err["code"] == "timeout"
        wait_idle(s)  # the abandoned decoding stops
        assert s.health()["abandoned"] == 1
        assert not uploads_left(tmp_path)
    finally:
        assert s.stop() == 0


def test_sigterm_finishes_what_is_in_flight(tmp_path, cli_texts):
    s = Server("--workers", "1", tmpdir=tmp_path)
    result = {}

    def one():
        result["r"] = transcribe(s.port, FILES[2])

    t = threading.Thread(target=one)
    t.start()
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while s.health()["running"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    s.proc.send_signal(signal.SIGTERM)
    t.join(REQUEST_TIMEOUT)
    status, _, body = result["r"]
    assert status == 200 and json.loads(body)["text"] == cli_texts[FILES[2].name]
    assert s.stop() == 0
    assert not list(tmp_path.glob("lasr-serve-*"))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=5).close()


def test_alignments(server, cli_texts):
    f = FILES[0]
    status, headers, body = post_form(server.port, "/v1/audio/alignments", {"model": "default"},
                                      {"file": (f.name, f.read_bytes())})
    assert status == 200, body
    doc = json.loads(body)
    assert doc["text"] == cli_texts[f.name]
    assert [w["word"] for w in doc["words"]] == doc["text"].split()
    assert doc["segments"] and all(s["svg"].startswith("<?xml") and "<svg" in s["svg"] for s in doc["segments"])
    assert doc["attention_csv"].startswith("segment,token_index,token,frame,time_s,weight\n")
    assert doc["tokens_csv"].startswith("segment,token_index,token,start_s,end_s,frame,logprob\n")
    assert doc["words_csv"].startswith("segment,word_index,word,start_s,end_s,confidence\n")
    for fmt, head in [("attention_csv", "segment,token_index"), ("tokens_csv", "segment,token_index,token,start_s"),
                      ("words_csv", "segment,word_index"), ("svg", "<?xml")]:
        status, headers, body = post_form(server.port, "/v1/audio/alignments", {"model": "default", "response_format": fmt},
                                          {"file": (f.name, f.read_bytes())})
        assert status == 200 and body.decode().startswith(head), fmt
    status, err = error_of(post_form(server.port, "/v1/audio/alignments",
                                     {"model": "default", "response_format": "svg", "segment": "7"},
                                     {"file": (f.name, f.read_bytes())}))
    assert status == 400 and err["param"] == "segment"
    status, err = error_of(post_form(server.port, "/v1/audio/alignments", {"model": "default", "response_format": "png"},
                                     {"file": (f.name, f.read_bytes())}))
    assert status == 400 and err["param"] == "response_format"


def test_a_model_that_does_not_load_stops_the_server(tmp_path):
    proc = subprocess.run([str(lasr_binary()), "serve", "--port", "0", "--model", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=REQUEST_TIMEOUT, env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert proc.returncode == 1
    assert "missing" in proc.stderr and "not found" in proc.stderr
    assert not list(tmp_path.glob("lasr-serve-*"))
