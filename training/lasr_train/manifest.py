"""Manifests: JSON lines `{id, audio, duration, text, speaker, corpus, [words]}`.

`audio` is relative to the folder holding the manifest; `read_manifest` turns it
into an absolute path (`path`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Utterance:
    id: str
    path: str
    duration: float
    text: str
    speaker: str = ""
    corpus: str = ""
    words: list = field(default_factory=list)


def read_manifest(path: str | Path, corpora: list[str] | None = None, limit: int = 0,
                  require_text: bool = True) -> list[Utterance]:
    """Utterances of a manifest, optionally only some corpora and only the first `limit`;
    with `require_text` False, lines without a transcript (unlabeled audio) read as text ""."""
    path = Path(path)
    root = path.parent
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: bad JSON: {e}") from None
            missing = ({"id", "audio", "duration"} | ({"text"} if require_text else set())) - set(d)
            if missing:
                raise ValueError(f"{path}:{n}: missing fields {sorted(missing)}")
            if corpora and d.get("corpus") not in corpora:
                continue
            audio = Path(d["audio"])
            out.append(Utterance(id=d["id"], path=str(audio if audio.is_absolute() else root / audio),
                                 duration=float(d["duration"]), text=d.get("text", ""),
                                 speaker=str(d.get("speaker", "")), corpus=d.get("corpus", ""),
                                 words=d.get("words", [])))
            if limit and len(out) >= limit:
                break
    return out


def write_manifest(path: str | Path, utts: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for u in utts:
            f.write(json.dumps(u) + "\n")
