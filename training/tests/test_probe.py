"""The CTC probe of frozen encoder states (lasr_train.probe)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from lasr_train.probe import ConvProbe, collate, length_batches, main, train
from lasr_train.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "default"


def test_batches_hold_every_utterance_once_within_the_frame_budget():
    data = {"feats": [torch.zeros(n, 4) for n in (30, 5, 80, 12, 12, 50, 7)]}
    groups = length_batches(data, 100, random.Random(0))
    assert sorted(i for g in groups for i in g) == list(range(7))
    for g in groups:
        assert max(data["feats"][i].shape[0] for i in g) * len(g) <= 100 or len(g) == 1


def test_padding_does_not_change_an_utterances_logits():
    torch.manual_seed(0)
    probe = ConvProbe(8, 12, width=16, layers=2).eval()
    short, long = torch.randn(9, 8), torch.randn(20, 8)
    alone = probe(short[None], torch.tensor([9]))[0]
    x, lengths, _, _ = collate({"feats": [short, long], "tokens": [torch.tensor([3]), torch.tensor([4])]}, [0, 1])
    batched = probe(x, lengths)[0, :9]
    assert torch.allclose(alone, batched, atol=1e-5)


def synthetic_set(tok: Tokenizer, sentences: list[str], dim: int = 24, seed: int = 0) -> dict:
    """States that spell each token plainly (two frames of its own random vector, then a
    frame of the blank's): a probe that learns anything must read these back."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(tok.size, dim, generator=g)
    data = {"ids": [], "feats": [], "tokens": [], "text": [], "corpus": []}
    for n, text in enumerate(sentences):
        ids = tok.encode(text)
        frames = [table[i] for t in ids for i in (t, t, 0)]
        data["ids"].append(str(n))
        data["feats"].append((torch.stack(frames) + 0.1 * torch.randn(len(frames), dim, generator=g)).half())
        data["tokens"].append(torch.tensor(ids, dtype=torch.int16))
        data["text"].append(text)
        data["corpus"].append("synthetic")
    return data


def test_a_probe_learns_to_read_states_that_spell_the_tokens(tmp_path):
    tok = Tokenizer.load(MODEL)
    words = "the cat sat on a mat while rain fell over quiet green hills near old stone walls".split()
    rng = random.Random(1)
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(96)]
    data = synthetic_set(tok, sentences)
    torch.save(data, tmp_path / "set.pt")
    results = train(str(tmp_path / "set.pt"), str(tmp_path / "set.pt"), str(MODEL), str(tmp_path / "run"),
                    epochs=16, batch_frames=600, lr=5e-3, width=64, layers=1, warmup=10,
                    say=lambda s: None)
    first, last = results[0]["wer"]["synthetic"], results[-1]["wer"]["synthetic"]
    assert last < 10.0, results
    assert last < first
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written == results and (tmp_path / "run" / "probe.pt").exists()


def test_native_features_have_the_encoders_frames_and_the_models_tokens(tmp_path):
    manifest = tmp_path / "m.jsonl"
    lines = []
    for name in ("01-welcome", "02-weather"):
        text = (ROOT / "audio" / f"{name}.txt").read_text().strip()
        lines.append(json.dumps({"id": name, "audio": str(ROOT / "audio" / f"{name}.wav"), "text": text, "duration": 1.0,
                                 "corpus": "demo"}))
    manifest.write_text("\n".join(lines) + "\n")
    main(["features", "--model", str(MODEL), "--manifest", str(manifest), "--out", str(tmp_path / "f.pt"),
          "--threads", "1"])
    data = torch.load(tmp_path / "f.pt")
    tok = Tokenizer.load(MODEL)
    from lasr_train.audio import load_audio
    from lasr_train.config import feature_config
    from lasr_train.export import load_model_dir
    from lasr_train.features import log_mel
    model, cfg, _ = load_model_dir(MODEL)
    assert data["ids"] == ["01-welcome", "02-weather"]
    for uid, x, tokens, text in zip(data["ids"], data["feats"], data["tokens"], data["text"]):
        frames = log_mel(load_audio(ROOT / "audio" / f"{uid}.wav"), feature_config(cfg)).shape[0]
        assert x.shape == (((frames + 1) // 2 + 1) // 2, cfg["encoder"]["d_model"]) and x.dtype == torch.float16
        assert tokens.tolist() == tok.encode(text) and text == text.lower()
