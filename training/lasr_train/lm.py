"""A token-level LSTM language model over a lasr model's vocabulary, for shallow fusion.

The engine adds `beta * log p_lm(token | prefix)` to every candidate of the beam search
(docs/model-format.md, "Language model"). This module is the recipe for that LM:

    python -m lasr_train.lm prepare --text BOOKS.txt.xz SENTENCES.txt --model models/default --out DATA
    python -m lasr_train.lm train --data DATA --out RUN [--resume] [--max-steps N] [--hidden H] ...
    python -m lasr_train.lm prepare --text train.jsonl extra.jsonl --model models/default --out TDATA
    python -m lasr_train.lm train --data DATA --add-data TDATA:80 --init RUN/last.pt --out ADAPT ...
    python -m lasr_train.lm export --checkpoint RUN/last.pt --model models/default --fixtures DIR
    python -m lasr_train.lm perplexity --checkpoint RUN/last.pt --data DATA
    python -m lasr_train.lm lexicon --data DATA --model models/default --min-count 1 --penalty 1.0 \
        --words /usr/share/dict/american-english

Text is normalized exactly as the transcripts are (`text.normalize_text`), split into
sentences, and tokenized with the model's own vocabulary. One paragraph in
`HELDOUT_EVERY` goes to a held-out slice for perplexity. Each training sequence starts
from a zero state with `<sos/eos>` as its first input and ends by predicting
`<sos/eos>`, as the beam search uses it. A sequence is a sentence, or (`--spans P`, a
share P of them) a span of running text: recordings such as LibriSpeech's are cut at
pauses, so an utterance often begins and ends inside a sentence and runs across
sentence ends, which an LM that only ever saw whole sentences has never met.

A manifest (`.jsonl`) given as text contributes its transcripts, one paragraph each. The
recipe adapts the books LM to them (`--add-data`: the books' training text plus K copies of
theirs), because the engine can discount the attention decoder's own prior
(`internal_lm_weight`), which it learned from those transcripts; an LM of books alone would
then leave their short everyday sentences with no prior at all (training/README.md).
"""
from __future__ import annotations

import argparse
import collections
from array import array
import hashlib
import json
import lzma
import math
import os
import random
import re
import time
import zlib
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .text import normalize_text
from .tokenizer import SOS_EOS, Tokenizer

HELDOUT_EVERY = 200
# Sentences longer than this many tokens are cut into pieces: rare in prose, and they
# would make padded batches mostly padding.
MAX_TOKENS = 160
# A sentence ends at . ! or ? (with closing quotes or brackets), before a space and
# something that can start a sentence.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[\"'“‘(\[]*[A-Z0-9])")
# Chapter headings, tables of contents and other lines without a lowercase word.
_PROSE = re.compile(r"[a-z]{2,}")
# The prepared data's layout; data of an older one is prepared again.
DATA_FORMAT = 2
# A span is at most this many tokens (LibriSpeech's longest utterances, 35 s, hold about
# 90 words, 150 tokens of the 256-piece vocabulary).
MAX_SPAN_TOKENS = 256


def split_sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph.strip()) if s]


def vocabulary_checksum(tokens_path) -> int:
    """CRC-32 of tokens.txt: the engine computes the same to tie an LM to its vocabulary."""
    return zlib.crc32(Path(tokens_path).read_bytes()) & 0xFFFFFFFF


def load_tokenizer(model_dir) -> Tokenizer:
    d = Path(model_dir)
    pieces = (d / "tokens.txt").read_text(encoding="utf-8").split("\n")
    if pieces and pieces[-1] == "":
        pieces = pieces[:-1]
    sp = d / "sentencepiece.model"
    return Tokenizer(pieces, str(sp) if sp.exists() else None)


def open_text(path):
    return lzma.open(path, "rt", encoding="utf-8") if str(path).endswith(".xz") else open(path, encoding="utf-8")


_worker_tokenizer: Tokenizer | None = None


def _init_worker(model_dir):
    global _worker_tokenizer
    _worker_tokenizer = load_tokenizer(model_dir)


def _encode_paragraph(paragraph: str) -> list[list[int]]:
    out = []
    for sentence in split_sentences(paragraph):
        if not _PROSE.search(sentence):
            continue
        text = normalize_text(sentence)
        if len(text.split()) < 2:
            continue
        ids = _worker_tokenizer.encode(text)
        for start in range(0, len(ids), MAX_TOKENS):
            out.append(ids[start:start + MAX_TOKENS])
    return out


def prepare(text_files: list[str], model_dir: str, out: str, jobs: int = 2, max_paragraphs: int | None = None) -> dict:
    """Normalized, tokenized sentences as flat uint16 arrays, `<sos/eos>` before each sentence
    and at the end: `train.u16`, `heldout.u16`; one byte per sentence in `train.last.u8`,
    `heldout.last.u8`, 1 where the sentence ends its paragraph (spans stay inside one);
    and `meta.json`, which lists the tokens that begin a word. Skipped when `meta.json`
    already describes the same text, vocabulary and layout."""
    outd = Path(out)
    crc = vocabulary_checksum(Path(model_dir) / "tokens.txt")
    sources = [{"path": str(Path(p).resolve()), "bytes": Path(p).stat().st_size} for p in text_files]
    meta_path = outd / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("vocabulary_crc32") == crc and meta.get("sources") == sources
                and meta.get("max_paragraphs") == max_paragraphs and meta.get("format") == DATA_FORMAT):
            print(f"{out}: prepared already ({meta['train_tokens']:,} training tokens)")
            return meta
    outd.mkdir(parents=True, exist_ok=True)
    paragraphs = []
    for path in text_files:
        manifest = str(path).endswith(".jsonl")
        with open_text(path) as f:
            for line in f:
                line = line.strip()
                if line and manifest:
                    # Transcripts are in capitals (LibriSpeech's); as prose they are lowercase,
                    # which is what the filter for headings keeps.
                    line = json.loads(line)["text"].strip().lower()
                if line:
                    paragraphs.append(line)
                    if max_paragraphs and len(paragraphs) >= max_paragraphs:
                        break
    started = time.time()
    starts_word = [p.startswith("\u2581") for p in load_tokenizer(model_dir).pieces]
    streams = {"train": array("H", [SOS_EOS]), "heldout": array("H", [SOS_EOS])}
    last = {"train": array("B"), "heldout": array("B")}
    counts = {"train": 0, "heldout": 0}
    words = {"train": 0, "heldout": 0}
    with Pool(jobs, initializer=_init_worker, initargs=(model_dir,)) as pool:
        for i, sentences in enumerate(pool.imap(_encode_paragraph, paragraphs, chunksize=256)):
            split = "heldout" if i % HELDOUT_EVERY == HELDOUT_EVERY - 1 else "train"
            for k, ids in enumerate(sentences):
                streams[split].extend(ids)
                streams[split].append(SOS_EOS)
                last[split].append(1 if k == len(sentences) - 1 else 0)
                counts[split] += 1
                words[split] += sum(1 for t in ids if starts_word[t])
    for split, ids in streams.items():
        np.frombuffer(ids, dtype=np.uint16).tofile(outd / f"{split}.u16")
        np.frombuffer(last[split], dtype=np.uint8).tofile(outd / f"{split}.last.u8")
    meta = {"format": DATA_FORMAT, "vocabulary_crc32": crc, "vocabulary_size": load_tokenizer(model_dir).size,
            "word_start_tokens": [i for i, w in enumerate(starts_word) if w], "sources": sources,
            "max_paragraphs": max_paragraphs, "paragraphs": len(paragraphs),
            "train_sentences": counts["train"], "heldout_sentences": counts["heldout"],
            "train_tokens": len(streams["train"]), "heldout_tokens": len(streams["heldout"]),
            "train_words": words["train"], "heldout_words": words["heldout"],
            "seconds": round(time.time() - started, 1)}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{out}: {meta['train_sentences']:,} training sentences ({meta['train_tokens']:,} tokens), "
          f"{meta['heldout_sentences']:,} held out, in {meta['seconds']} s")
    return meta


class LSTMLM(nn.Module):
    """Embedding, `layers` LSTM layers, a linear output over the vocabulary."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.args = {"vocab": vocab, "embed": embed, "hidden": hidden, "layers": layers}
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.embed(x), state)
        return torch.log_softmax(self.out(h), dim=-1), state


def sentence_bounds(stream: np.ndarray) -> np.ndarray:
    """Start and end (exclusive, at the closing `<sos/eos>`) of each sentence in a flat stream."""
    eos = np.flatnonzero(stream == SOS_EOS)
    return np.stack([eos[:-1] + 1, eos[1:]], axis=1)


def make_batch(stream: np.ndarray, ranges: np.ndarray, picks) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs `<sos/eos> s` and targets `s <sos/eos>` of the picked token ranges of the stream
    (sentences, or spans with the `<sos/eos>` of the sentence ends inside them left out),
    padded (-100 targets)."""
    bodies = []
    for i in picks:
        body = stream[int(ranges[i, 0]):int(ranges[i, 1])]
        bodies.append(body[body != SOS_EOS].astype(np.int64))
    width = max(len(b) for b in bodies) + 1
    x = torch.zeros(len(picks), width, dtype=torch.long)
    y = torch.full((len(picks), width), -100, dtype=torch.long)
    for row, body in enumerate(bodies):
        seq = torch.from_numpy(np.concatenate([[SOS_EOS], body, [SOS_EOS]]))
        x[row, :len(seq) - 1] = seq[:-1]
        y[row, :len(seq) - 1] = seq[1:]
    return x, y


class Spans:
    """Draws spans of running text in a prepared stream: each begins in a given sentence,
    at its first word or (half the time) at a random word of it, and runs for a number of
    words drawn uniformly from `words`, across sentence ends but never past its paragraph's
    end, and never beyond `MAX_SPAN_TOKENS`."""

    def __init__(self, stream: np.ndarray, bounds: np.ndarray, last: np.ndarray, word_start_tokens,
                 words: tuple[int, int] = (2, 80)):
        if len(last) != len(bounds):
            raise SystemExit(f"{len(last)} paragraph marks for {len(bounds)} sentences: prepare the data again")
        self.words = words
        self.word_pos = np.flatnonzero(np.isin(stream, np.asarray(word_start_tokens, dtype=stream.dtype)))
        ends = np.flatnonzero(last)
        # Each sentence's paragraph ends where the paragraph's last sentence does.
        self.paragraph_end = bounds[ends[np.searchsorted(ends, np.arange(len(bounds)))], 1]
        self.first = np.searchsorted(self.word_pos, bounds[:, 0])
        self.count = np.searchsorted(self.word_pos, bounds[:, 1]) - self.first

    def draw(self, sentences: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Token ranges (start, end) of one span from each of `sentences`."""
        count = np.maximum(self.count[sentences], 1)
        inside = np.where(rng.random(len(sentences)) < 0.5, 0, rng.integers(0, count))
        a = np.minimum(self.first[sentences] + inside, len(self.word_pos) - 1)
        n = rng.integers(self.words[0], self.words[1] + 1, size=len(sentences))
        after = a + n
        stop = np.where(after < len(self.word_pos), self.word_pos[np.minimum(after, len(self.word_pos) - 1)],
                        self.paragraph_end[sentences])
        start = self.word_pos[a]
        stop = np.minimum(stop, self.paragraph_end[sentences])
        # The cap falls on a word start, so that no span ends inside a word.
        cap = self.word_pos[np.maximum(np.searchsorted(self.word_pos, start + MAX_SPAN_TOKENS, side="right") - 1, a + 1)
                            .clip(max=len(self.word_pos) - 1)]
        stop = np.where(stop - start > MAX_SPAN_TOKENS, np.minimum(cap, stop), stop)
        return np.stack([start, stop], axis=1)


def heldout_spans(stream: np.ndarray, last: np.ndarray, word_start_tokens) -> np.ndarray:
    """A fixed set of spans of the held-out text, one from each sentence, for a perplexity
    that measures what spans teach."""
    bounds = sentence_bounds(stream)
    return Spans(stream, bounds, last, word_start_tokens).draw(np.arange(len(bounds)), np.random.default_rng(0))


def training_sequences(bounds: np.ndarray, spans: Spans | None, share: float, rng: random.Random) -> np.ndarray:
    """One pass's sequences: every sentence, a share of them replaced by a span beginning in it."""
    if spans is None or share <= 0:
        return bounds
    g = np.random.default_rng(rng.getrandbits(64))
    ranges = bounds.copy()
    chosen = np.flatnonzero(g.random(len(bounds)) < share)
    ranges[chosen] = spans.draw(chosen, g)
    return ranges


def batches_by_tokens(bounds: np.ndarray, batch_tokens: int, rng: random.Random, spans: Spans | None = None,
                      share: float = 0.0):
    """Endless (ranges, batch) pairs of about `batch_tokens` tokens each, sequences of
    similar length together; each pass over the sentences draws its spans anew."""
    while True:
        ranges = training_sequences(bounds, spans, share, rng)
        lengths = ranges[:, 1] - ranges[:, 0] + 1
        order = list(range(len(ranges)))
        rng.shuffle(order)
        # Sort within chunks of 100 batches' worth: little padding, still a random order.
        chunk = 100 * max(1, batch_tokens // max(1, int(lengths.mean())))
        for c in range(0, len(order), chunk):
            part = sorted(order[c:c + chunk], key=lambda i: lengths[i])
            batch, widest = [], 0
            group = []
            for i in part:
                widest = max(widest, int(lengths[i]))
                if group and widest * (len(group) + 1) > batch_tokens:
                    batch.append(group)
                    group, widest = [], int(lengths[i])
                group.append(i)
            if group:
                batch.append(group)
            rng.shuffle(batch)
            for group in batch:
                yield ranges, group


@torch.no_grad()
def perplexity(model: LSTMLM, stream: np.ndarray, batch_tokens: int = 8192, limit: int | None = None,
               ranges: np.ndarray | None = None) -> dict:
    """Per-token perplexity (the end of each sequence included) of the stream's sentences, or
    of the given token ranges (spans)."""
    model.eval()
    bounds = sentence_bounds(stream) if ranges is None else ranges
    if limit:
        bounds = bounds[:limit]
    order = sorted(range(len(bounds)), key=lambda i: bounds[i, 1] - bounds[i, 0])
    total, count, group, widest = 0.0, 0, [], 0
    def run(group):
        nonlocal total, count
        x, y = make_batch(stream, bounds, group)
        lp, _ = model(x)
        mask = y != -100
        total -= lp.gather(2, y.clamp(min=0).unsqueeze(2)).squeeze(2)[mask].sum().item()
        count += int(mask.sum())
    for i in order:
        n = int(bounds[i, 1] - bounds[i, 0]) + 1
        if group and max(widest, n) * (len(group) + 1) > batch_tokens:
            run(group)
            group, widest = [], 0
        group.append(i)
        widest = max(widest, n)
    if group:
        run(group)
    model.train()
    return {"token_perplexity": math.exp(total / max(count, 1)), "tokens": count, "nll": total, "sentences": len(bounds)}


def load_initial_weights(model: LSTMLM, path: str, vocabulary_crc32: int) -> None:
    """Starts `model` from an exported `lm.safetensors` (float16, the engine's names), which
    must be of the same shape and, by its model's config.yaml, the same vocabulary; or from
    a run's checkpoint (`.pt`, e.g. the last.pt of an earlier stage) of the same shape and
    vocabulary."""
    import yaml
    from safetensors.torch import load_file

    if path.endswith(".pt"):
        ck = torch.load(path, weights_only=False)
        if ck["vocabulary_crc32"] != vocabulary_crc32:
            raise SystemExit(f"{path}: trained on another vocabulary (CRC-32 {ck['vocabulary_crc32']:08x}, "
                             f"this data's is {vocabulary_crc32:08x})")
        if ck["model_args"] != model.args:
            raise SystemExit(f"{path}: an LM of shape {ck['model_args']}, this one is {model.args} (--hidden, --embed, --layers)")
        model.load_state_dict(ck["model"])
        return
    cfg_path = Path(path).parent / "config.yaml"
    crc = (yaml.safe_load(cfg_path.read_text()).get("lm") or {}).get("vocabulary_crc32") if cfg_path.exists() else None
    if crc != vocabulary_crc32:
        raise SystemExit(f"{path}: its config.yaml does not tie it to this data's vocabulary "
                         f"(CRC-32 {vocabulary_crc32:08x})")
    tensors = load_file(path)
    params = engine_parameters(model)
    if set(tensors) != set(params):
        raise SystemExit(f"{path}: tensors {sorted(tensors)} are not those of a {model.args['layers']}-layer LSTM LM")
    for k, v in tensors.items():
        if params[k].shape != v.shape:
            raise SystemExit(f"{path}: {k} is {tuple(v.shape)}, this LM's is {tuple(params[k].shape)} (--hidden, --embed)")
    with torch.no_grad():
        for k, v in tensors.items():
            params[k].copy_(v.to(torch.float32))


def training_text(d: Path, meta: dict, add_data) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The training stream of prepared data `d` with `k` copies of each `(dir, k)` of
    `add_data` after it, their paragraph-end flags, and a record of what was added."""
    train_stream = np.fromfile(d / "train.u16", dtype=np.uint16)
    train_last = np.fromfile(d / "train.last.u8", dtype=np.uint8)
    added = []
    for extra, copies in add_data:
        em = json.loads((Path(extra) / "meta.json").read_text())
        if em.get("format") != DATA_FORMAT or em["vocabulary_crc32"] != meta["vocabulary_crc32"]:
            raise SystemExit(f"{extra}: not prepared in this layout for this vocabulary (--data {d}); prepare it again")
        if copies < 1:
            raise SystemExit(f"--add-data {extra}:{copies}: the number of copies must be at least 1")
        es = np.fromfile(Path(extra) / "train.u16", dtype=np.uint16)
        # Both streams start with <sos/eos> and end with one: the copies follow without it.
        train_stream = np.concatenate([train_stream] + [es[1:]] * copies)
        train_last = np.concatenate([train_last] + [np.fromfile(Path(extra) / "train.last.u8", dtype=np.uint8)] * copies)
        added.append({"data": str(Path(extra).resolve()), "copies": copies, "sentences": em["train_sentences"],
                      "tokens": em["train_tokens"] - 1, "sources": em["sources"]})
    return train_stream, train_last, added


def train(data: str, out: str, hidden: int, embed: int, layers: int, batch_tokens: int, max_steps: int,
          lr: float, warmup: int, resume: bool, eval_every: int, save_every: int, seed: int, threads: int | None,
          log_every: int = 50, stop_at: int | None = None, spans: float = 0.0,
          span_words: tuple[int, int] = (2, 80), init: str | None = None,
          add_data: list[tuple[str, int]] = ()) -> Path:
    """Trains to `max_steps` (the learning rate falls linearly to 0 there), or stops early at
    `stop_at` with a checkpoint that `resume` continues exactly as if never stopped. A share
    `spans` of the sequences are spans of running text (`Spans`); `init` starts a new run
    from an exported `lm.safetensors` or another run's checkpoint instead of random weights.
    Each `(dir, k)` of `add_data` appends k copies of that prepared data's training text to
    `data`'s; the held-out slice stays `data`'s, so perplexities compare across runs."""
    if threads:
        torch.set_num_threads(threads)
    d, outd = Path(data), Path(out)
    outd.mkdir(parents=True, exist_ok=True)
    meta = json.loads((d / "meta.json").read_text())
    if meta.get("format") != DATA_FORMAT:
        raise SystemExit(f"{d}: prepared in an older layout; run `lasr_train.lm prepare` again")
    train_stream, train_last, added = training_text(d, meta, add_data)
    heldout = np.fromfile(d / "heldout.u16", dtype=np.uint16)
    bounds = sentence_bounds(train_stream)
    sampler = None
    if spans > 0:
        sampler = Spans(train_stream, bounds, train_last, meta["word_start_tokens"], tuple(span_words))
    heldout_ranges = heldout_spans(heldout, np.fromfile(d / "heldout.last.u8", dtype=np.uint8),
                                   meta["word_start_tokens"])
    last = outd / "last.pt"
    torch.manual_seed(seed)
    model = LSTMLM(meta["vocabulary_size"], embed, hidden, layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step, seen, log = 0, 0, []
    sequences = {"spans": spans, "span_words": list(span_words)}
    if resume and last.exists():
        ck = torch.load(last, weights_only=False)
        if ck["model_args"] != model.args or ck["vocabulary_crc32"] != meta["vocabulary_crc32"]:
            raise SystemExit(f"{last}: a run of another shape or vocabulary; use a new --out")
        if ck.get("sequences", {"spans": 0.0, "span_words": [2, 80]}) != sequences:
            raise SystemExit(f"{last}: trained with {ck.get('sequences')}, not {sequences}; the batches would differ")
        if [(a["data"], a["copies"]) for a in ck.get("added_data", [])] != [(a["data"], a["copies"]) for a in added]:
            raise SystemExit(f"{last}: trained with --add-data {ck.get('added_data', [])}, not this; the batches would differ")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, seen, log = ck["step"], ck["tokens_seen"], ck["log"]
        init = ck.get("init")
        print(f"resumed {last} at step {step} ({seen:,} tokens seen)")
    elif init:
        load_initial_weights(model, init, meta["vocabulary_crc32"])
        p = perplexity(model, heldout)["token_perplexity"]
        log.append({"step": 0, "heldout_token_perplexity": p,
                    "heldout_span_perplexity": perplexity(model, heldout, ranges=heldout_ranges)["token_perplexity"]})
        print(f"started from {init}: held-out perplexity {p:.3f} per token, "
              f"{log[-1]['heldout_span_perplexity']:.3f} on spans", flush=True)
    # The batch order is a function of the seed and the step, so a resumed run sees what
    # an uninterrupted one would.
    rng = random.Random(seed)
    batches = batches_by_tokens(bounds, batch_tokens, rng, sampler, spans)
    for _ in range(step):
        next(batches)

    def rate(s):
        if s < warmup:
            return lr * (s + 1) / warmup
        return lr * max(0.0, 1 - (s - warmup) / max(1, max_steps - warmup))

    def save():
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "model_args": model.args,
                    "step": step, "tokens_seen": seen, "log": log, "vocabulary_crc32": meta["vocabulary_crc32"],
                    "data": str(d.resolve()), "data_meta": meta, "max_steps": max_steps, "lr": lr,
                    "batch_tokens": batch_tokens, "sequences": sequences, "init": init, "added_data": added}, tmp)
        os.replace(tmp, last)

    started, window, window_tokens = time.time(), 0.0, 0
    while step < min(max_steps, stop_at or max_steps):
        x, y = make_batch(train_stream, *next(batches))
        for g in opt.param_groups:
            g["lr"] = rate(step)
        lp, _ = model(x)
        mask = y != -100
        loss = -lp.gather(2, y.clamp(min=0).unsqueeze(2)).squeeze(2)[mask].mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        n = int(mask.sum())
        seen += n
        window += loss.item() * n
        window_tokens += n
        if step % log_every == 0:
            speed = window_tokens / max(1e-9, time.time() - started)
            print(f"step {step}/{max_steps} loss {window / window_tokens:.3f} lr {rate(step):.2e} "
                  f"{speed:,.0f} tokens/s, {seen:,} seen", flush=True)
            log.append({"step": step, "loss": window / window_tokens, "tokens_seen": seen})
            started, window, window_tokens = time.time(), 0.0, 0
        if step % eval_every == 0 or step == max_steps:
            p = perplexity(model, heldout)["token_perplexity"]
            q = perplexity(model, heldout, ranges=heldout_ranges)["token_perplexity"]
            log.append({"step": step, "heldout_token_perplexity": p, "heldout_span_perplexity": q})
            print(f"step {step}: held-out perplexity {p:.3f} per token, {q:.3f} on spans", flush=True)
        if step % save_every == 0 or step == max_steps or step == stop_at:
            save()
    return last


def load_checkpoint(path) -> tuple[LSTMLM, dict]:
    ck = torch.load(path, weights_only=False)
    a = ck["model_args"]
    model = LSTMLM(a["vocab"], a["embed"], a["hidden"], a["layers"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def engine_parameters(model: LSTMLM) -> dict[str, torch.nn.Parameter]:
    """The model's parameters under the engine's names (docs/model-format.md)."""
    sd = {"lm.embed.weight": model.embed.weight, "lm.out.weight": model.out.weight, "lm.out.bias": model.out.bias}
    for layer in range(model.args["layers"]):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            sd[f"lm.lstm{layer}.{kind}"] = getattr(model.lstm, f"{kind}_l{layer}")
    return sd


def engine_state_dict(model: LSTMLM) -> dict[str, torch.Tensor]:
    """The weights under the engine's names, float16, as exported."""
    return {k: v.detach().to(torch.float16).contiguous() for k, v in engine_parameters(model).items()}


def rounded_model(model: LSTMLM) -> LSTMLM:
    """The model with its weights rounded to float16 as exported, computing in float32."""
    r = LSTMLM(**model.args)
    r.load_state_dict({k: v.to(torch.float16).to(torch.float32) for k, v in model.state_dict().items()})
    r.eval()
    return r


CARD_HEADING = "## Language model"


def card_lines(args: dict, ck: dict, info: dict, weight: float, length_bonus: float,
               length_normalization: bool, file_bytes: int, internal_lm_weight: float = 0.0,
               stage: dict | None = None) -> list[str]:
    """The model card's section on the LM: what it is, what it read, how it is fused. `stage`
    describes the run `ck` started from (`init`), when it was one: its steps and tokens."""
    meta = ck.get("data_meta", {})
    sources = ", ".join(Path(s["path"]).name for s in meta.get("sources", [])) or "not recorded"
    added = ck.get("added_data", [])
    train_tokens = meta.get("train_tokens", 0) + sum(a["copies"] * a["tokens"] for a in added)
    passes = info["tokens_seen"] / train_tokens if train_tokens else None
    training = (f"- training (lasr_train.lm, make train-lm): {info['step']:,} steps of about {ck.get('batch_tokens', 4096):,} tokens, "
                f"{info['tokens_seen']:,} tokens seen" + (f" ({passes:.2f} of a pass)" if passes else "")
                + f", learning rate {ck.get('lr')} falling linearly to 0 at step {ck.get('max_steps'):,}")
    if stage is None and ck.get("init"):
        training = (f"- training (lasr_train.lm): from the exported LM {ck['init']} (its own training not recorded here), "
                    f"{info['step']:,} more steps" + (" with the added text" if added else "")
                    + f" ({info['tokens_seen']:,} tokens, learning rate {ck.get('lr')} falling linearly to 0)")
    if stage:
        training = (f"- training (lasr_train.lm, make train-lm): {stage['step']:,} steps on that text "
                    f"({stage['tokens_seen']:,} tokens, learning rate {stage.get('lr')} falling linearly to 0), then "
                    f"{info['step']:,} more on it with the added text ({info['tokens_seen']:,} tokens, "
                    f"learning rate {ck.get('lr')} falling linearly to 0)")
    adapted = [f"- added text: {a['copies']} copies of the transcripts of "
               + ", ".join(Path(s["path"]).name for s in a["sources"])
               + f" ({a['sentences']:,} sentences, {a['tokens']:,} tokens), the acoustic model's own training text"
               for a in added]
    return [
        CARD_HEADING, "",
        f"- lm.safetensors: {args['layers']}-layer LSTM of {args['hidden']}, embedding {args['embed']}, over this "
        f"model's {args['vocab']}-entry vocabulary; {info['parameters']:,} parameters, {file_bytes / 1e6:.1f} MB as float16",
        f"- text: {sources} (public-domain Project Gutenberg books, with every paragraph sharing an 8-word "
        f"sequence with an evaluation transcript removed, and the public-domain LJ Speech sentences), "
        f"normalized as the transcripts are: {meta.get('train_sentences', 0):,} training sentences "
        f"({meta.get('train_tokens', 0):,} tokens), one paragraph in {HELDOUT_EVERY} held out",
        *adapted,
        training,
        f"- held-out perplexity (that text's held-out slice): {info['heldout_token_perplexity']:.2f} per token (float16 weights)",
        f"- fusion defaults (lm: in config.yaml): weight {weight}, length bonus {length_bonus}"
        + (f", internal-LM discount {internal_lm_weight}" if internal_lm_weight > 0 else "")
        + ", hypotheses ranked " + ("per token" if length_normalization else "by total score")
        + "; `--no-lm` decodes without it",
        "",
    ]


def section_bounds(lines: list[str], heading: str) -> tuple[int, int] | None:
    """Where a Markdown section lies in `lines`: its heading's index and the index of the next
    "## " heading (or the end); None when the heading is absent."""
    if heading not in lines:
        return None
    start = lines.index(heading)
    return start, next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))


def card_section(text: str, heading: str) -> list[str] | None:
    """The lines of a card's `heading` section, ending in one blank line; None if it has none."""
    lines = text.rstrip("\n").split("\n")
    bounds = section_bounds(lines, heading)
    if bounds is None:
        return None
    start, end = bounds
    return lines[start:end] + ([""] if lines[end - 1] != "" else [])


def with_card_section(text: str, lines: list[str]) -> str:
    """MODEL_CARD.md with its language-model section replaced, or added before "## Limitations"."""
    kept = text.rstrip("\n").split("\n")
    bounds = section_bounds(kept, CARD_HEADING)
    if bounds is not None:
        start, end = bounds
        kept[start:end] = lines
    else:
        at = kept.index("## Limitations") if "## Limitations" in kept else len(kept)
        if at == len(kept) and kept and kept[-1] != "":
            kept.append("")
            at += 1
        kept[at:at] = lines
    return "\n".join(kept).rstrip("\n") + "\n"


def write_lm_section(cfg_path: Path, section: dict) -> None:
    """Replaces config.yaml's `lm:` section whole, written last, so the rest of the file keeps its comments."""
    import yaml

    text = re.sub(r"\nlm:\n(  .*\n?)*", "\n", cfg_path.read_text()).rstrip("\n") + "\n"
    cfg_path.write_text(text + yaml.safe_dump({"lm": section}, sort_keys=False))


def export(checkpoint: str, model_dir: str, fixtures: str | None, weight: float, length_bonus: float,
           fixture_text: str = "the weather will be cloudy in the morning",
           length_normalization: bool = False, internal_lm_weight: float = 0.0) -> dict:
    """Writes `lm.safetensors` and the `lm:` section of `config.yaml` into an exported model
    directory, and the parity fixture (log-probabilities of a sentence, step by step)."""
    from safetensors.numpy import save_file as np_save_file
    from safetensors.torch import save_file

    model, ck = load_checkpoint(checkpoint)
    md = Path(model_dir)
    crc = vocabulary_checksum(md / "tokens.txt")
    if crc != ck["vocabulary_crc32"]:
        raise SystemExit(f"{checkpoint}: trained on another vocabulary than {md / 'tokens.txt'} "
                         f"(CRC-32 {ck['vocabulary_crc32']:08x}, the model's {crc:08x}): make train-lm retrains it")
    save_file(engine_state_dict(model), str(md / "lm.safetensors"),
              metadata={"format": "lasr-lm", "format_version": "1", "dtype": "float16"})
    rounded = rounded_model(model)
    heldout = np.fromfile(Path(ck["data"]) / "heldout.u16", dtype=np.uint16)
    ppl = perplexity(rounded, heldout)["token_perplexity"]
    section = {
        "file": "lm.safetensors", "embed_dim": model.args["embed"], "hidden": model.args["hidden"],
        "layers": model.args["layers"], "vocabulary_crc32": crc, "weight": weight, "length_bonus": length_bonus,
        "length_normalization": length_normalization, "heldout_perplexity": round(ppl, 4)}
    if internal_lm_weight > 0:
        section["internal_lm_weight"] = internal_lm_weight
    write_lm_section(md / "config.yaml", section)
    info = {"heldout_token_perplexity": ppl, "step": ck["step"], "tokens_seen": ck["tokens_seen"],
            "parameters": sum(p.numel() for p in model.parameters())}
    card = md / "MODEL_CARD.md"
    if card.exists():
        stage = None
        if ck.get("init", "") and str(ck["init"]).endswith(".pt") and Path(ck["init"]).exists():
            first = torch.load(ck["init"], weights_only=False)
            stage = {"step": first["step"], "tokens_seen": first["tokens_seen"], "lr": first.get("lr")}
        lines = card_lines(model.args, ck, info, weight, length_bonus, length_normalization,
                           (md / "lm.safetensors").stat().st_size, internal_lm_weight, stage)
        card.write_text(with_card_section(card.read_text(encoding="utf-8"), lines), encoding="utf-8")
    if fixtures:
        tok = load_tokenizer(md)
        ids = [SOS_EOS] + tok.encode(normalize_text(fixture_text)) + [SOS_EOS]
        with torch.no_grad():
            lp, _ = rounded(torch.tensor([ids[:-1]]))
        fd = Path(fixtures)
        fd.mkdir(parents=True, exist_ok=True)
        np_save_file({"tokens": np.asarray(ids, dtype=np.float32), "log_probs": lp[0].numpy().astype(np.float32)},
                     str(fd / "lm-parity.safetensors"))
        lm_sha = hashlib.sha256((md / "lm.safetensors").read_bytes()).hexdigest()
        (fd / "lm-parity.json").write_text(json.dumps({"text": fixture_text, "lm_sha256": lm_sha,
                                                        "heldout_token_perplexity": ppl}, indent=1) + "\n")
    return info


LEXICON_FILE = "lexicon.txt"


def lexicon_counts(data: str, model_dir: str) -> collections.Counter:
    """How often each word occurs in the prepared training text (not the held-out slice),
    read back from its tokens, so the words are normalized exactly as the LM saw them."""
    meta = json.loads((Path(data) / "meta.json").read_text())
    crc = vocabulary_checksum(Path(model_dir) / "tokens.txt")
    if meta["vocabulary_crc32"] != crc:
        raise SystemExit(f"{data}: prepared for another vocabulary than {Path(model_dir) / 'tokens.txt'} "
                         f"(CRC-32 {meta['vocabulary_crc32']:08x}, the model's {crc:08x}): prepare it again")
    pieces = load_tokenizer(model_dir).pieces
    # Each token as the text it adds: a word start (and a sentence bound) is a space.
    table = np.array([" " if i == SOS_EOS else p.replace("\u2581", " ") for i, p in enumerate(pieces)], dtype=object)
    stream = np.fromfile(Path(data) / "train.u16", dtype=np.uint16)
    counts: collections.Counter = collections.Counter()
    bounds = np.flatnonzero(stream == SOS_EOS)
    # About a million tokens at a time, cut at sentence bounds so no word is split.
    cuts = [0] + [int(bounds[np.searchsorted(bounds, k)]) for k in range(1 << 20, len(stream), 1 << 20)
                  if np.searchsorted(bounds, k) < len(bounds)] + [len(stream)]
    for a, b in zip(cuts, cuts[1:]):
        counts.update("".join(table[stream[a:b]]).split())
    # A word with a piece the vocabulary could not spell is no word to check against.
    for w in [w for w in counts if "<" in w]:
        del counts[w]
    return counts


def dictionary_words(path: str) -> set[str]:
    """The common words of a word list, one entry a line (such as `/usr/share/dict/american-english`):
    entries already in the transcripts' normal form, a single word of lowercase letters and
    apostrophes. Capitalized entries (names, places) and anything with digits, hyphens or
    accents are left out: the books already hold the names their readers meet, and a list of
    every name would let the search spell almost anything."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
    except OSError as e:
        raise SystemExit(f"{path}: cannot read the word list ({e.strerror}); on Debian it is the wamerican package")
    return {w for w in (line.strip() for line in lines) if w and normalize_text(w) == w and " " not in w}


LEXICON_NOTICE = "lexicon-NOTICE.txt"


def write_lexicon(data: str, model_dir: str, min_count: int, penalty: float, words_files: list[str] = (),
                  notice: str | None = None) -> dict:
    """Writes `lexicon.txt` (the LM text's words seen at least `min_count` times, and the
    common words of each of `words_files`) into the model directory, names it in the `lm:`
    section with its default penalty, and adds a line on it to the card's language-model
    section. `notice`, the word lists' copyright and licence text, is copied beside it as
    `LEXICON_NOTICE` (their licences ask that it go with every copy). Run after `export`,
    which writes that section."""
    import yaml

    md = Path(model_dir)
    cfg_path = md / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    if not cfg.get("lm"):
        raise SystemExit(f"{cfg_path}: no lm: section; lasr_train.lm export writes it, then the lexicon")
    counts = lexicon_counts(data, model_dir)
    text_words = {w for w, c in counts.items() if c >= min_count}
    listed = set().union(*(dictionary_words(f) for f in words_files))
    words = sorted(text_words | listed)
    (md / LEXICON_FILE).write_text("\n".join(words) + "\n", encoding="utf-8")
    if notice is not None:
        try:
            (md / LEXICON_NOTICE).write_bytes(Path(notice).read_bytes())
        except OSError as e:
            raise SystemExit(f"{notice}: cannot read the word lists' notice ({e.strerror})")
    elif (md / LEXICON_NOTICE).exists():
        (md / LEXICON_NOTICE).unlink()   # an earlier list's notice does not speak for this one
    write_lm_section(cfg_path, {**cfg["lm"], "lexicon": LEXICON_FILE, "lexicon_penalty": penalty})
    covered = sum(c for c in counts.values() if c >= min_count) / max(1, sum(counts.values()))
    info = {"words": len(words), "types": len(counts), "min_count": min_count, "penalty": penalty,
            "bytes": (md / LEXICON_FILE).stat().st_size, "running_words_covered": covered,
            "from_text": len(text_words), "listed_only": len(words) - len(text_words)}
    card = md / "MODEL_CARD.md"
    if card.exists():
        lines = card.read_text(encoding="utf-8").rstrip("\n").split("\n")
        lines = [l for l in lines if not l.startswith(f"- {LEXICON_FILE}:")]
        bounds = section_bounds(lines, CARD_HEADING)
        if bounds is not None:
            start, end = bounds
            while end > start + 1 and lines[end - 1] == "":
                end -= 1
            which = "every word" if min_count == 1 else f"the words seen at least {min_count} times"
            plus = ""
            if words_files:
                names = ", ".join(f"`{f}`" for f in words_files)
                plus = f", and {info['listed_only']:,} more common words (lowercase entries) of the word list {names}"
                if notice is not None:
                    plus += f" (its copyright and licence: {LEXICON_NOTICE})"
            count = f" ({len(text_words):,}){plus}, {len(words):,} in all" if words_files else f", {len(words):,}"
            lines.insert(end, f"- {LEXICON_FILE}: {which} of that text{count} ({info['bytes'] / 1e6:.1f} MB); a fused "
                              f"hypothesis pays {penalty} where its spelling leaves them (`--lexicon-penalty`)")
            card.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return info


def parse_added(spec: str) -> tuple[str, int]:
    """`DIR:K` of --add-data (K defaults to 1)."""
    path, _, k = spec.rpartition(":") if ":" in spec else (spec, "", "1")
    try:
        return path, int(k)
    except ValueError:
        raise SystemExit(f"--add-data {spec}: expected DIR:K with K a whole number of copies")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="normalize, split and tokenize text for the LM")
    p.add_argument("--text", nargs="+", required=True)
    p.add_argument("--model", required=True, help="model directory whose vocabulary the LM uses")
    p.add_argument("--out", required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--max-paragraphs", type=int, default=None, help="only the first N paragraphs (smoke runs)")
    t = sub.add_parser("train", help="train (or --resume) the LM")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--hidden", type=int, default=512)
    t.add_argument("--embed", type=int, default=256)
    t.add_argument("--layers", type=int, default=1)
    t.add_argument("--batch-tokens", type=int, default=4096)
    t.add_argument("--max-steps", type=int, default=6000)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--eval-every", type=int, default=1000)
    t.add_argument("--save-every", type=int, default=200)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--seed", type=int, default=20261201)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--stop-at", type=int, default=None, help="stop (with a checkpoint) at this step; --resume goes on")
    t.add_argument("--spans", type=float, default=0.0,
                   help="share of the sequences that are spans of running text instead of sentences")
    t.add_argument("--span-words", type=int, nargs=2, default=[2, 80], metavar=("MIN", "MAX"),
                   help="a span's length in words, drawn uniformly")
    t.add_argument("--init", default=None, help="start a new run from this exported lm.safetensors, or from another run's checkpoint (.pt)")
    t.add_argument("--add-data", nargs="+", default=[], metavar="DIR:K",
                   help="append K copies of another prepared text's training slice (e.g. the transcripts) to --data's")
    e = sub.add_parser("export", help="write lm.safetensors and the lm: config section into a model directory")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--fixtures", default=None)
    e.add_argument("--weight", type=float, default=0.3, help="shallow-fusion weight beta stored as the default")
    e.add_argument("--length-bonus", type=float, default=0.0, help="per-token bonus gamma stored as the default")
    e.add_argument("--internal-lm-weight", type=float, default=0.0,
                   help="default weight mu of the internal-LM discount (0: none; docs/model-format.md)")
    e.add_argument("--length-normalization", action="store_true",
                   help="rank fused hypotheses by score per token (default: by total score, where gamma counts per token)")
    q = sub.add_parser("perplexity", help="per-token perplexity of a checkpoint on a prepared slice")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--split", default="heldout")
    x = sub.add_parser("lexicon", help="write the LM text's word list (lexicon.txt) into a model directory")
    x.add_argument("--data", required=True, help="the prepared text (lasr_train.lm prepare --out)")
    x.add_argument("--model", required=True)
    x.add_argument("--min-count", type=int, default=1, help="keep words seen at least this often")
    x.add_argument("--penalty", type=float, default=1.0, help="the default penalty for a word outside it")
    x.add_argument("--words", nargs="*", default=[], metavar="FILE",
                   help="word lists (one word a line) whose lowercase entries join the text's words, "
                        "so that words the books never use (recognizer, email) are not penalized")
    x.add_argument("--notice", metavar="FILE",
                   help="the word lists' copyright and licence, copied into the model as " + LEXICON_NOTICE)
    a = ap.parse_args(argv)
    if a.command == "lexicon":
        if a.notice and not a.words:
            raise SystemExit("--notice goes with --words: it is the word lists' licence")
        info = write_lexicon(a.data, a.model, a.min_count, a.penalty, a.words, a.notice)
        print(f"{a.model}/{LEXICON_FILE}: {info['from_text']:,} of the text's {info['types']:,} words (seen ≥ "
              f"{a.min_count} times; {100 * info['running_words_covered']:.2f} % of the running text), "
              f"{info['listed_only']:,} more from the word lists, {info['words']:,} in all; penalty {a.penalty}")
    elif a.command == "prepare":
        prepare(a.text, a.model, a.out, jobs=a.jobs, max_paragraphs=a.max_paragraphs)
    elif a.command == "train":
        train(a.data, a.out, a.hidden, a.embed, a.layers, a.batch_tokens, a.max_steps, a.lr, a.warmup,
              a.resume, a.eval_every, a.save_every, a.seed, a.threads, a.log_every, a.stop_at,
              spans=a.spans, span_words=tuple(a.span_words), init=a.init,
              add_data=[parse_added(x) for x in a.add_data])
    elif a.command == "export":
        info = export(a.checkpoint, a.model, a.fixtures, a.weight, a.length_bonus,
                      length_normalization=a.length_normalization, internal_lm_weight=a.internal_lm_weight)
        print(f"{a.model}: lm.safetensors ({info['parameters']:,} parameters, step {info['step']}), "
              f"held-out perplexity {info['heldout_token_perplexity']:.3f} per token")
    else:
        model, _ = load_checkpoint(a.checkpoint)
        stream = np.fromfile(Path(a.data) / f"{a.split}.u16", dtype=np.uint16)
        p = perplexity(model, stream)
        print(f"{a.split}: {p['token_perplexity']:.3f} per token over {p['tokens']:,} tokens "
              f"({p['sentences']:,} sentences)")
        last = Path(a.data) / f"{a.split}.last.u8"
        if last.exists():
            meta = json.loads((Path(a.data) / "meta.json").read_text())
            ranges = heldout_spans(stream, np.fromfile(last, dtype=np.uint8), meta["word_start_tokens"])
            q = perplexity(model, stream, ranges=ranges)
            print(f"{a.split} spans: {q['token_perplexity']:.3f} per token over {q['tokens']:,} tokens "
                  f"({q['sentences']:,} spans)")


if __name__ == "__main__":
    main()
