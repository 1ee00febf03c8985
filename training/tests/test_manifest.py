import json

import pytest

from lasr_train.manifest import read_manifest


def test_read_manifest_resolves_paths_and_filters(tmp_path):
    lines = [
        {"id": "a", "audio": "audio/x/a.opus", "duration": 1.5, "text": "HELLO", "speaker": "s1", "corpus": "x"},
        {"id": "b", "audio": "/abs/b.flac", "duration": 2, "text": "World.", "speaker": 7, "corpus": "y",
         "words": [[0.1, 0.4, "world"]]},
    ]
    m = tmp_path / "m.jsonl"
    m.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    utts = read_manifest(m)
    assert [u.id for u in utts] == ["a", "b"]
    assert utts[0].path == str(tmp_path / "audio/x/a.opus")
    assert utts[1].path == "/abs/b.flac"
    assert utts[1].speaker == "7" and utts[1].duration == 2.0 and utts[1].words == [[0.1, 0.4, "world"]]
    assert [u.id for u in read_manifest(m, corpora=["y"])] == ["b"]
    assert len(read_manifest(m, limit=1)) == 1


def test_read_manifest_rejects_missing_fields(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"id": "a", "audio": "a.wav"}) + "\n")
    with pytest.raises(ValueError, match="missing fields"):
        read_manifest(m)
