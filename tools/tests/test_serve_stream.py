"""The live WebSocket of `lasr serve`: a file streamed at real-time pace gets its
finals before the stream ends, the same lines as `lasr stream --json`."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from websockets.sync.client import connect

from lasr_server import AUDIO, assert_same_finals, concat16k, DEFAULT_MODEL, REQUEST_TIMEOUT, Server, lasr_binary

FILES = sorted(AUDIO.glob("*.wav"))


def two_utterances(tmp_path) -> bytes:
    """Two samples with 1.5 s of silence after each (16 kHz mono s16le WAV, by sox): the
    first must be final before the audio ends."""
    return concat16k(FILES[:2], tmp_path / "two.wav", pad_after=1.5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server("--max-streams", "1", tmpdir=tmp_path_factory.mktemp("stream"))
    yield s
    assert s.stop() == 0, s.log()


def test_stream_at_real_time_pace(server, tmp_path):
    wav = two_utterances(tmp_path)
    expected = [json.loads(l) for l in subprocess.run(
        [str(lasr_binary()), "stream", "--json", "--model", str(DEFAULT_MODEL)], input=wav, capture_output=True,
        check=True, timeout=REQUEST_TIMEOUT).stdout.decode().splitlines()]
    assert len(expected) == 2, expected

    received: list[dict] = []
    lock = threading.Lock()
    with connect(f"ws://127.0.0.1:{server.port}/v1/audio/stream?model=default", open_timeout=60,
                 close_timeout=REQUEST_TIMEOUT) as ws:
        def listen():
            for message in ws:
                with lock:
                    received.append(json.loads(message))

        listener = threading.Thread(target=listen)
        listener.start()
        rate, chunk = 16000, 3200  # 100 ms of s16le mono after the 44-byte header
        ws.send(wav[:44])
        for i in range(44, len(wav), chunk):
            ws.send(wav[i:i + chunk])
            time.sleep(0.1)
        # Before the stream ends: the first utterance, followed by 1.5 s of silence, is final.
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while time.monotonic() < deadline:
            with lock:
                if any(m["type"] == "final" for m in received):
                    break
            time.sleep(0.1)
        with lock:
            finals_before_end = [m for m in received if m["type"] == "final"]
        assert finals_before_end, "no final arrived while the audio was still streaming"
        ws.send("end")
        listener.join(REQUEST_TIMEOUT)
    assert received[-1] == {"type": "done"}
    finals = [m for m in received if m["type"] == "final"]
    assert_same_finals(finals, expected)
    for m in finals:
        assert m["words"] and all(0 <= w["start"] <= w["end"] for w in m["words"])


def test_partials_and_bad_parameters(server):
    with connect(f"ws://127.0.0.1:{server.port}/v1/audio/stream?model=default&partials=500", open_timeout=60) as ws:
        data = FILES[0].read_bytes()
        for i in range(0, len(data), 16000):
            ws.send(data[i:i + 16000])
        ws.send("end")
        messages = [json.loads(m) for m in ws]
    assert messages[-1] == {"type": "done"}
    assert any(m["type"] == "final" for m in messages)
    assert {m["type"] for m in messages} <= {"partial", "final", "done"}

    for query, code, param in [("model=nope", "model_not_found", "model"), ("", "invalid_value", "model"),
                               ("model=default&rate=5", "invalid_value", "rate"),
                               ("model=default&format=mp3", "invalid_value", "format")]:
        error, close_code = refused(server, query)
        assert (error["code"], error["param"], close_code) == (code, param, 1008), query
        assert error["message"]


def refused(server, query: str) -> tuple[dict, int]:
    """The one error message of a refused stream, and the close code that follows it."""
    from websockets.exceptions import ConnectionClosed
    with connect(f"ws://127.0.0.1:{server.port}/v1/audio/stream?{query}", open_timeout=60) as ws:
        message = json.loads(ws.recv(timeout=60))
        assert message["type"] == "error"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=60)
        return message, ws.close_code


def test_streams_past_the_limit_are_refused(server):
    with connect(f"ws://127.0.0.1:{server.port}/v1/audio/stream?model=default", open_timeout=60) as first:
        first.send(FILES[0].read_bytes()[:44])
        deadline = time.monotonic() + 60
        while server.health()["streams"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        error, close_code = refused(server, "model=default")
        assert error["code"] == "server_busy" and close_code == 1013
        first.send("end")
        assert [json.loads(m) for m in first][-1] == {"type": "done"}
