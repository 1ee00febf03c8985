"""A CTC probe: how much of a transcript can a small fixed network read from frozen
encoder states, trained on the same transcripts for each?

Run on models/default's own encoder and on a teacher's cached layers (`lasr_train.teacher
cache`), the same probe, data and schedule separate what the representation holds from
what the decoder on top of it adds: it tells whether a student that matched a teacher
layer would read new voices better than the native encoder does, before any engine work
(training/README.md, "A probe of the teacher's layers"). SUPERB (Yang et al. 2021) scores
self-supervised encoders the same way, with a BiLSTM and CTC; this probe is residual 1-D
convolutions instead: a two-layer BiLSTM of the same size took more than twenty times as
long a step on this 2-core machine.

    python -m lasr_train.probe features --model models/default --manifest M --out F.pt
    python -m lasr_train.probe features --model models/default --teacher-cache DIR --layer L \\
        --manifest M --out F.pt           # the teacher's states; tokens still by --model's vocabulary
    python -m lasr_train.probe train --tokens models/default --train F.pt --dev F.pt --out DIR

A feature file holds, per utterance of the manifest, its states (float16, the student's
40 ms frames), its normalized text and its tokens; teacher caches hold only the lines
they were run on, and the probe reads only those. `train` writes `log.txt`,
`results.json` (greedy CTC WER per corpus after each epoch) and `probe.pt`.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
import torch.nn as nn

from .decode import ctc_greedy
from .evaluate import levenshtein
from .tokenizer import BLANK, Tokenizer


def features(manifest: str, model_dir: str, out: str, teacher_cache: str | None = None, layer: int = 0,
             limit: int = 0) -> int:
    """Writes the feature file of `manifest` (see the module doc); returns its utterance count."""
    from .manifest import read_manifest
    from .text import normalize_text

    tok = Tokenizer.load(model_dir)
    utts = read_manifest(manifest, limit=limit)
    data = {"ids": [], "feats": [], "tokens": [], "text": [], "corpus": [],
            "source": f"{teacher_cache}:layer{layer}" if teacher_cache else f"{model_dir}:encoder"}
    if teacher_cache:
        from .teacher import TeacherStates
        states = TeacherStates(teacher_cache)
        if layer not in states.meta["layers"]:
            raise SystemExit(f"{teacher_cache} holds layers {states.meta['layers']}, not {layer}")
    else:
        from .audio import load_audio
        from .config import feature_config
        from .export import load_model_dir
        from .features import log_mel
        model, cfg, _ = load_model_dir(model_dir)
        fc = feature_config(cfg)
    for u in utts:
        if teacher_cache:
            if u.id not in states:
                continue
            x = states.states(u.id, layer)
        else:
            f = torch.from_numpy(log_mel(load_audio(u.path), fc))
            with torch.no_grad():
                x = model.encode(f[None], torch.tensor([f.shape[0]]))[0][0]
        text = normalize_text(u.text)
        data["ids"].append(u.id)
        data["feats"].append(x.half())
        data["tokens"].append(torch.tensor(tok.encode(text), dtype=torch.int16))
        data["text"].append(text)
        data["corpus"].append(u.corpus)
    if not data["ids"]:
        raise SystemExit(f"{manifest}: no utterances" + (f" with states in {teacher_cache}" if teacher_cache else ""))
    torch.save(data, out)
    return len(data["ids"])


class ConvProbe(nn.Module):
    """States → layer norm (no affine, as distillation normalizes teacher states) → linear →
    residual pre-norm convolutions of kernel 5 → token logits, blank first."""

    def __init__(self, d_in: int, vocab: int, width: int = 256, layers: int = 3, dropout: float = 0.2):
        super().__init__()
        self.norm = nn.LayerNorm(d_in, elementwise_affine=False)
        self.inp = nn.Linear(d_in, width)
        self.drop = nn.Dropout(dropout)
        self.convs = nn.ModuleList(nn.Conv1d(width, width, 5, padding=2) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.out = nn.Linear(width, vocab)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1])[None] < lengths[:, None]).float()[..., None]
        x = self.drop(torch.relu(self.inp(self.norm(x)))) * mask
        for conv, norm in zip(self.convs, self.norms):
            # Padding frames stay zero so that no convolution reads past an utterance's end.
            x = x + self.drop(nn.functional.gelu(conv(norm(x).transpose(1, 2)).transpose(1, 2))) * mask
        return self.out(x)


def length_batches(data: dict, frames: int, rng: random.Random) -> list[list[int]]:
    """Utterances grouped by length into batches of at most `frames` padded frames, shuffled."""
    order = sorted(range(len(data["feats"])), key=lambda i: data["feats"][i].shape[0])
    groups, cur, longest = [], [], 0
    for i in order:
        t = data["feats"][i].shape[0]
        if cur and max(longest, t) * (len(cur) + 1) > frames:
            groups.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, t)
    if cur:
        groups.append(cur)
    rng.shuffle(groups)
    return groups


def collate(data: dict, idx: list[int], rng: random.Random | None = None):
    """Padded float32 states, lengths, concatenated targets, target lengths; with `rng`, time
    masks (up to 5 frames, one per 2 s) on the input, as SpecAugment masks the student's."""
    xs = [data["feats"][i].float() for i in idx]
    lengths = torch.tensor([x.shape[0] for x in xs])
    x = nn.utils.rnn.pad_sequence(xs, batch_first=True)
    if rng is not None:
        for b in range(x.shape[0]):
            n = int(lengths[b])
            for _ in range(max(1, n // 50)):
                w = rng.randint(0, 5)
                s = rng.randint(0, max(0, n - w))
                x[b, s: s + w] = 0
    ys = [data["tokens"][i].long() for i in idx]
    return x, lengths, torch.cat(ys), torch.tensor([len(y) for y in ys])


@torch.no_grad()
def word_error_rates(model: ConvProbe, data: dict, tok: Tokenizer) -> dict[str, float]:
    """Greedy CTC WER (%) per corpus of a feature file."""
    was = model.training
    model.eval()
    counts = {}
    for i in range(0, len(data["feats"]), 32):
        idx = list(range(i, min(i + 32, len(data["feats"]))))
        x, lengths, _, _ = collate(data, idx)
        for j, hyp in zip(idx, ctc_greedy(model(x, lengths), lengths)):
            ref = data["text"][j].split()
            c = counts.setdefault(data["corpus"][j], [0, 0])
            c[0] += levenshtein(ref, tok.decode(hyp).split())[3]
            c[1] += len(ref)
    model.train(was)
    return {k: round(100.0 * e / max(n, 1), 2) for k, (e, n) in sorted(counts.items())}


def train(train_file: str, dev_file: str, tokens: str, out: str, epochs: int = 10, batch_frames: int = 12000,
          lr: float = 2e-3, width: int = 256, layers: int = 3, seed: int = 1, minutes: float = 0.0,
          warmup: int = 100, say=print) -> list[dict]:
    """Trains a probe (AdamW, `warmup` steps, cosine to 0 over `epochs`) and scores it on
    the dev file after each epoch; `minutes` > 0 stops it early at that wall time."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = Tokenizer.load(tokens)
    tr, dev = torch.load(train_file), torch.load(dev_file)
    model = ConvProbe(tr["feats"][0].shape[1], tok.size, width, layers)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "log.txt", "a", encoding="utf-8")

    def note(s: str):
        say(s)
        log.write(s + "\n")
        log.flush()

    note(f"probe of {tr.get('source', train_file)}: {tr['feats'][0].shape[1]}-dim states, "
         f"{sum(p.numel() for p in model.parameters())} parameters, {len(tr['feats'])} training utterances")
    start, step, results, total = time.time(), 0, [], None
    for epoch in range(1, epochs + 1):
        groups = length_batches(tr, batch_frames, rng)
        total = total or len(groups) * epochs
        for g in groups:
            rate = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
            for pg in opt.param_groups:
                pg["lr"] = rate
            x, lengths, y, ylengths = collate(tr, g, rng)
            loss = ctc(torch.log_softmax(model(x, lengths), -1).transpose(0, 1), y, lengths, ylengths)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            if step % 50 == 0:
                note(f"epoch {epoch} step {step} loss {loss.item():.3f} rate {rate:.2e} {time.time() - start:.0f} s")
        wer = word_error_rates(model, dev, tok)
        results.append({"epoch": epoch, "step": step, "seconds": round(time.time() - start), "wer": wer})
        note(f"epoch {epoch}: dev greedy CTC WER " + ", ".join(f"{k} {v:.2f}" for k, v in wer.items()))
        if minutes and time.time() - start > minutes * 60:
            break
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    torch.save(model.state_dict(), out_dir / "probe.pt")
    log.close()
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features", help="states, texts and tokens of a manifest")
    f.add_argument("--model", required=True, help="an exported native model: its encoder, and its vocabulary")
    f.add_argument("--teacher-cache", help="read this teacher cache's states instead of running the encoder")
    f.add_argument("--layer", type=int, default=0, help="the teacher layer to read (with --teacher-cache)")
    f.add_argument("--manifest", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--limit", type=int, default=0)
    t = sub.add_parser("train", help="train a probe and score it on a dev feature file")
    t.add_argument("--train", required=True)
    t.add_argument("--dev", required=True)
    t.add_argument("--tokens", required=True, help="the model directory whose vocabulary the features used")
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-frames", type=int, default=12000)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--width", type=int, default=256)
    t.add_argument("--layers", type=int, default=3)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--minutes", type=float, default=0.0)
    t.add_argument("--warmup", type=int, default=100)
    for p in (f, t):
        p.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.cmd == "features":
        if a.teacher_cache and not a.layer:
            raise SystemExit("--teacher-cache needs --layer")
        n = features(a.manifest, a.model, a.out, a.teacher_cache, a.layer, a.limit)
        print(f"{a.out}: {n} utterances")
    else:
        train(a.train, a.dev, a.tokens, a.out, a.epochs, a.batch_frames, a.lr, a.width, a.layers, a.seed,
              a.minutes, a.warmup)


if __name__ == "__main__":
    main()
