"""Whisper as the native model's teacher (training/README.md, "The teacher").

One loader for the Whisper directories that `lasr models install` / `lasr models
convert` write (config.yaml with a `whisper:` block, model.safetensors in openai-whisper's
tensor names, tokens.txt in GPT-2's byte spelling), the network in PyTorch, and a cache
pass that runs it once over manifests:

    python -m lasr_train.teacher cache --teacher models/whisper-base \\
        --manifest ../shared/speech/train.jsonl ../shared/speech/unlabeled.jsonl \\
        --out /work/lasr-runs/teacher/whisper-base [--layers 3 6] [--transcribe en]

The cache holds, per utterance, the chosen encoder layers' states at the student's
frame rate (two Whisper frames of 20 ms averaged into one of 40 ms, float16) in
shards of `--shard-size` utterances (`states-NNNNN.safetensors`, written whole then
renamed, so an interrupted pass resumes at the first missing shard), and, for
utterances whose `language` is in `--transcribe`, the teacher's greedy transcript
with its average token log-probability and no-speech probability in
`transcripts.jsonl` (one line per shard's utterances, appended after the shard).

Whisper sees every utterance as openai-whisper's `transcribe` does: 30 s of silence
appended before the log-mel, the first 30 s window encoded; the states of the frames
that cover the audio are kept. Nothing here needs openai-whisper installed: the
equations are the published architecture (Radford et al. 2022, "Robust Speech
Recognition via Large-Scale Weak Supervision"), checked against lasr's own Whisper
decoding of audio/ (training/tests/test_teacher.py).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file

from .audio import load_audio
from .features import FeatureConfig, log_mel
from .model import SelfOrCrossAttention, subsampled_lengths

WINDOW_SECONDS = 30
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class WhisperDims:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


class Block(nn.Module):
    """Pre-LayerNorm transformer block: self-attention, cross-attention (decoder only), GELU MLP."""

    def __init__(self, d: int, heads: int, cross: bool):
        super().__init__()
        self.attn = SelfOrCrossAttention(d, heads)
        self.attn_ln = nn.LayerNorm(d)
        self.cross_attn = SelfOrCrossAttention(d, heads) if cross else None
        self.cross_attn_ln = nn.LayerNorm(d) if cross else None
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.mlp_ln = nn.LayerNorm(d)

    def forward(self, x, audio=None, causal: bool = False, cross_kv=None):
        x = x + self.attn(self.attn_ln(x), causal=causal)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.cross_attn_ln(x), audio, kv=cross_kv)
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoder(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        d = dims.n_audio_state
        self.conv1 = nn.Conv1d(dims.n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.zeros(dims.n_audio_ctx, d))
        self.blocks = nn.ModuleList(Block(d, dims.n_audio_head, cross=False) for _ in range(dims.n_audio_layer))
        self.ln_post = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor, layers: tuple[int, ...] = ()):
        """mel (B, 2·n_audio_ctx, n_mels) → (final states (B, n_audio_ctx, d), {layer: states}).

        Layer l in 1…n_audio_layer is the residual stream after block l; the last
        layer's entry is taken after `ln_post`, the encoder's output.
        """
        x = F.gelu(self.conv1(mel.transpose(1, 2)))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positional_embedding[: x.shape[1]]
        kept = {}
        for i, block in enumerate(self.blocks, 1):
            x = block(x)
            if i in layers and i != len(self.blocks):
                kept[i] = x
        x = self.ln_post(x)
        if len(self.blocks) in layers:
            kept[len(self.blocks)] = x
        return x, kept


class TextDecoder(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        d = dims.n_text_state
        self.token_embedding = nn.Embedding(dims.n_vocab, d)
        self.positional_embedding = nn.Parameter(torch.zeros(dims.n_text_ctx, d))
        self.blocks = nn.ModuleList(Block(d, dims.n_text_head, cross=True) for _ in range(dims.n_text_layer))
        self.ln = nn.LayerNorm(d)

    def cross_keys_values(self, audio: torch.Tensor) -> list:
        return [block.cross_attn.keys_values(audio) for block in self.blocks]

    def forward(self, tokens: torch.Tensor, audio: torch.Tensor, cross_kv: list | None = None,
                positions: slice | None = None) -> torch.Tensor:
        """Log-probabilities of the next token at `positions` (default: every one), (B, T, n_vocab).
        `cross_kv` (from `cross_keys_values`) spares recomputing the audio's keys and values."""
        x = self.token_embedding(tokens) + self.positional_embedding[: tokens.shape[1]]
        for i, block in enumerate(self.blocks):
            x = block(x, audio, causal=True, cross_kv=cross_kv[i] if cross_kv else None)
        x = x if positions is None else x[:, positions]
        logits = self.ln(x) @ self.token_embedding.weight.T
        return F.log_softmax(logits.float(), dim=-1)


def _feature_config(d: dict) -> FeatureConfig:
    """The `features:` block; PyYAML reads `1e-10` (no dot) as a string, so numbers are
    coerced to the type of the field's default."""
    defaults = FeatureConfig()
    return FeatureConfig.from_dict({k: (type(getattr(defaults, k))(v) if isinstance(getattr(defaults, k, None), (int, float))
                                         and not isinstance(getattr(defaults, k), bool) and v is not None else v)
                                    for k, v in d.items()})


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode spelling, inverted: printable bytes stand for themselves,
    the others for the code points from 256 up, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


@dataclass
class Transcription:
    text: str
    tokens: list[int]
    logprobs: list[float]      # of each token (timestamps too; the end of text excluded)
    avg_logprob: float
    no_speech_prob: float


class Teacher(nn.Module):
    """A converted Whisper checkpoint in eval mode, float32."""

    def __init__(self, directory: str | Path):
        super().__init__()
        directory = Path(directory)
        cfg_path = directory / "config.yaml"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{directory}: no config.yaml (install one with `lasr models install whisper-base`)")
        cfg = yaml.safe_load(cfg_path.read_text())
        if cfg.get("architecture") != "whisper" or "whisper" not in cfg:
            raise ValueError(f"{cfg_path}: not a Whisper model (architecture: {cfg.get('architecture')!r})")
        self.directory = directory
        self.config = cfg
        self.dims = WhisperDims(**{k: int(v) for k, v in cfg["whisper"].items()})
        self.features = _feature_config(cfg["features"])
        self.encoder = AudioEncoder(self.dims)
        tensors = load_numpy(str(directory / "model.safetensors"))
        # A directory may hold the encoder alone (a fifth of tiny.en's weights): enough for
        # encoder states, which is what distillation needs; transcripts need the decoder.
        self.decoder = TextDecoder(self.dims) if any(k.startswith("decoder.") for k in tensors) else None
        state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{directory}/model.safetensors: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
        self.eval()
        vocab = cfg["vocabulary"]
        self.special = {k: vocab[k] for k in ("end_of_text", "start_of_transcript", "transcribe", "no_speech",
                                              "no_timestamps", "timestamp_begin")}
        self.languages = vocab.get("languages") or []
        self.first_language = vocab.get("first_language")
        self.english_only = bool(vocab.get("english_only"))
        self.suppress = list(vocab.get("suppress_tokens") or [])
        # Split on "\n" only: str.splitlines would also split at U+0085 and U+2028.
        self.pieces = (directory / vocab["tokens"]).read_text(encoding="utf-8").split("\n")
        self._bytes = _byte_decoder()

    @property
    def window_frames(self) -> int:
        return 2 * self.dims.n_audio_ctx

    def log_mel_window(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """The first 30 s window of the log-mel of `samples` + 30 s of silence, and
        how many of its frames are audio (openai-whisper's padding, as lasr's)."""
        hop = self.features.hop_length
        padded = np.concatenate([samples.astype(np.float32), np.zeros(self.window_frames * hop, np.float32)])
        mel = log_mel(padded, self.features)
        content = min(self.window_frames, max(0, len(mel) - self.window_frames))
        return mel[: self.window_frames], content

    @torch.no_grad()
    def encode(self, mels: np.ndarray, layers: tuple[int, ...] = ()):
        """Encoder output and the chosen layers for a batch of windows (B, frames, n_mels),
        on the device the teacher is on."""
        device = self.encoder.positional_embedding.device
        return self.encoder(torch.from_numpy(np.ascontiguousarray(mels)).to(device), layers)

    def prompt(self, language: str | None, timestamps: bool = False) -> list[int]:
        sot = [self.special["start_of_transcript"]]
        if not self.english_only:
            lang = language or "en"
            if lang not in self.languages:
                raise ValueError(f"{self.directory.name}: no language {lang!r}")
            sot += [self.first_language + self.languages.index(lang), self.special["transcribe"]]
        return sot if timestamps else sot + [self.special["no_timestamps"]]

    @torch.no_grad()
    def transcribe(self, audio: torch.Tensor, language: str | None = "en", timestamps: bool = True,
                   max_tokens: int | None = None) -> Transcription:
        """Greedy decoding of one window's encoder output (1, n_audio_ctx, d) with
        openai-whisper's token rules, as `lasr transcribe --beam 1 --no-fallback` decodes
        a window: its listed tokens suppressed, no blank or end of text first, and with
        `timestamps` the timestamp grammar (a timestamp first, at most 1 s in; they come
        in pairs, never decrease, and one is forced once the timestamps together are more
        likely than any text token). The text is that of every text token."""
        if self.decoder is None:
            raise ValueError(f"{self.directory}: model.safetensors holds the encoder alone; transcripts need "
                             "the whole model (lasr models install)")
        prompt = self.prompt(language, timestamps)
        eot, ts = self.special["end_of_text"], self.special["timestamp_begin"]
        limit = max_tokens or self.dims.n_text_ctx // 2
        suppressed = torch.tensor(self.suppress + [self.special["no_timestamps"]], dtype=torch.long)
        space = [i for i, p in enumerate(self.pieces[:eot]) if p == "Ġ"]
        tokens = list(prompt)
        total, no_speech = 0.0, 0.0
        out: list[int] = []
        logprobs: list[float] = []
        cross = self.decoder.cross_keys_values(audio)
        for step in range(limit):
            # The first pass also reads the no-speech probability after the start token.
            logp = self.decoder(torch.tensor([tokens]), audio, cross, positions=None if step == 0 else slice(-1, None))[0]
            if step == 0:
                no_speech = float(logp[0, self.special["no_speech"]].exp())
            row = logp[-1].clone()
            if step == 0:
                row[space + [eot]] = -math.inf
            row[suppressed] = -math.inf
            if not timestamps:
                row[ts:] = -math.inf
            else:
                self._timestamp_rules(row, out)
            row = F.log_softmax(row, dim=-1)
            token = int(row.argmax())
            total += float(row[token])
            if token == eot:
                break
            out.append(token)
            logprobs.append(float(row[token]))
            tokens.append(token)
        text_tokens = [t for t in out if t < eot]
        return Transcription(self.text(text_tokens), out, logprobs, total / (len(out) + 1), no_speech)

    def _timestamp_rules(self, row: torch.Tensor, seq: list[int]) -> None:
        eot, ts = self.special["end_of_text"], self.special["timestamp_begin"]
        last = len(seq) >= 1 and seq[-1] >= ts
        penultimate = len(seq) < 2 or seq[-2] >= ts
        if last:
            if penultimate:
                row[ts:] = -math.inf      # a pair just closed: text (or the end) next
            else:
                row[:eot] = -math.inf     # a timestamp after text: another, or the end
        stamps = [t for t in seq if t >= ts]
        if stamps:
            floor = stamps[-1] if last and not penultimate else stamps[-1] + 1
            row[ts:floor] = -math.inf
        if not seq:
            row[:ts] = -math.inf
            row[ts + 51:] = -math.inf     # the first timestamp at most 1.00 s in
        logp = F.log_softmax(row, dim=-1)
        if torch.logsumexp(logp[ts:], dim=0) > logp[:ts].max():
            row[:ts] = -math.inf

    def text(self, tokens: list[int]) -> str:
        eot = self.special["end_of_text"]
        data = bytes(self._bytes[c] for t in tokens if t < eot for c in self.pieces[t])
        return data.decode("utf-8", errors="replace").strip()


def pool_to_student(states: torch.Tensor, content_frames: int) -> np.ndarray:
    """Teacher states (n_audio_ctx, d) at 20 ms → the student's 40 ms frames covering
    `content_frames` mel frames: T' = ceil(ceil(T/2)/2) frames, each the mean of two."""
    student = int(subsampled_lengths(torch.tensor(content_frames)))
    x = states[: 2 * student]
    if x.shape[0] < 2 * student:
        x = torch.cat([x, x[-1:].expand(2 * student - x.shape[0], -1)])
    return x.view(student, 2, -1).mean(dim=1).to(torch.float16).numpy()


def read_jsonl(path: str | Path) -> list[dict]:
    """Manifest lines (labelled or not), `audio` made absolute under the manifest's folder."""
    path = Path(path)
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: bad JSON: {e}") from None
            if "id" not in d or "audio" not in d:
                raise ValueError(f"{path}:{n}: needs id and audio")
            audio = Path(d["audio"])
            d["path"] = str(audio if audio.is_absolute() else path.parent.resolve() / audio)
            out.append(d)
    return out


def cache(args) -> None:
    torch.set_num_threads(args.threads)
    teacher = Teacher(args.teacher).to(args.device)
    if args.device != "cpu" and args.transcribe:
        raise SystemExit(f"--device {args.device}: transcripts are decoded on the CPU; cache the states with "
                         "--transcribe (no languages) there and the transcripts in a run on the CPU")
    part, parts = parse_part(args.part)
    layers = tuple(args.layers or [teacher.dims.n_audio_layer])
    bad = [l for l in layers if not 1 <= l <= teacher.dims.n_audio_layer]
    if bad:
        raise SystemExit(f"--layers {bad}: {teacher.directory.name} has layers 1…{teacher.dims.n_audio_layer}")
    utts = []
    for m in args.manifest:   # per manifest, the selection lasr_train.data's --max-duration and --limit make
        some = read_jsonl(m)
        if args.max_duration:
            some = [u for u in some if float(u.get("duration", 0)) <= args.max_duration]
        utts += some[: args.limit or None]
    if args.languages is not None:   # after --limit, so a smoke run's selection stays that of lasr_train.data
        utts = [u for u in utts if u.get("language") in args.languages]
        if not utts:
            raise SystemExit(f"--languages {' '.join(args.languages)}: no line of {args.manifest} has one of them "
                             "as its `language`")
    seen = set()
    for u in utts:
        if u["id"] in seen:
            raise SystemExit(f"utterance id {u['id']!r} appears twice in {args.manifest}")
        seen.add(u["id"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"teacher": teacher.directory.name, "teacher_config": teacher.config.get("source"),
            "layers": list(layers), "state_dim": teacher.dims.n_audio_state, "frame_seconds": 0.04,
            "manifests": [str(Path(m).resolve()) for m in args.manifest], "shard_size": args.shard_size,
            "utterances": len(utts), "transcribe": args.transcribe, "languages": args.languages}
    meta_path = out / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in meta} != meta:   # a key older caches lack reads as None, its default
            raise SystemExit(f"{out} holds a cache of other settings ({meta_path}); choose another --out")
    else:   # parts started together write the same meta; each writes it whole and renames it
        tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, meta_path)
    shards = [utts[i: i + args.shard_size] for i in range(0, len(utts), args.shard_size)]
    done_lines = {}
    tpath = out / "transcripts.jsonl"
    if tpath.exists():
        for line in tpath.read_text().splitlines():
            d = json.loads(line)
            done_lines[d["id"]] = line
    start = time.time()
    audio_seconds = 0.0
    for n, shard in enumerate(shards):
        path = out / f"states-{n:05d}.safetensors"
        if path.exists() or n % parts != part:
            continue
        tensors, index, texts = {}, [], []
        for i in range(0, len(shard), args.batch):
            group = shard[i: i + args.batch]
            samples = [load_audio(u["path"])[: WINDOW_SECONDS * SAMPLE_RATE] for u in group]
            windows = [teacher.log_mel_window(s) for s in samples]
            final, kept = teacher.encode(np.stack([w for w, _ in windows]), layers)
            for j, (u, (_, content)) in enumerate(zip(group, windows)):
                audio_seconds += len(samples[j]) / SAMPLE_RATE
                for layer in layers:
                    tensors[f"{u['id']}/layer{layer}"] = torch.from_numpy(pool_to_student(kept[layer][j].cpu(),
                                                                                          content))
                index.append(u["id"])
                if u.get("language") in (args.transcribe or []) and u["id"] not in done_lines:
                    t = teacher.transcribe(final[j: j + 1], language=u["language"])
                    texts.append(json.dumps({"id": u["id"], "audio": u["path"], "duration": u.get("duration"),
                                             "language": u["language"], "corpus": u.get("corpus", ""),
                                             "speaker": u.get("speaker", ""), "text": t.text,
                                             "avg_logprob": round(t.avg_logprob, 4),
                                             "no_speech_prob": round(t.no_speech_prob, 4)}))
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata={"ids": json.dumps(index)})
        os.replace(tmp, path)
        if texts:
            with open(tpath, "a", encoding="utf-8") as f:
                f.write("".join(t + "\n" for t in texts))
        elapsed = time.time() - start
        print(f"shard {n + 1}/{len(shards)}: {len(shard)} utterances, {audio_seconds / max(elapsed, 1e-9):.1f}× "
              f"real time so far", flush=True)
    print(f"{out}: {len(shards)} shards, {len(utts)} utterances"
          + (f" (part {part + 1} of {parts}: one shard in {parts})" if parts > 1 else ""), flush=True)


def parse_part(text: str) -> tuple[int, int]:
    """`K/N` → (K-1, N): the K-th of N processes that share one cache, each taking every N-th shard."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SystemExit(f"--part {text!r}: expected K/N, e.g. 2/8")
    if not 1 <= k <= n:
        raise SystemExit(f"--part {text}: K must be 1…N")
    return k - 1, n


class TeacherStates:
    """Reads caches written by `cache`: the pooled states of one utterance and layer.

    Several caches (of other manifests, say one per set) read as one, if the same
    teacher made them with the same layers."""

    def __init__(self, *directories: str | Path):
        from safetensors import safe_open

        dirs = [Path(d) for d in directories]
        self.directory = dirs[0]
        self.meta = json.loads((self.directory / "meta.json").read_text())
        self._where = {}
        self._files = {}
        for directory in dirs[1:]:
            meta = json.loads((directory / "meta.json").read_text())
            for key in ("teacher", "layers", "state_dim"):
                if meta.get(key) != self.meta.get(key):
                    raise SystemExit(f"teacher caches {self.directory} and {directory} differ in {key} "
                                     f"({self.meta.get(key)!r} vs {meta.get(key)!r})")
            # What taught the model, for its card: every cache's audio.
            self.meta["manifests"] = self.meta.get("manifests", []) + meta.get("manifests", [])
            self.meta["utterances"] = self.meta.get("utterances", 0) + meta.get("utterances", 0)
        for directory in dirs:
            for path in sorted(directory.glob("states-*.safetensors")):
                f = safe_open(str(path), framework="pt")
                self._files[path] = f
                for uid in json.loads(f.metadata()["ids"]):
                    self._where[uid] = path

    def __contains__(self, uid: str) -> bool:
        return uid in self._where

    def __len__(self) -> int:
        return len(self._where)

    def states(self, uid: str, layer: int) -> torch.Tensor:
        return self._files[self._where[uid]].get_tensor(f"{uid}/layer{layer}")


def encoder_only(directory: str | Path, out: str | Path) -> Path:
    """A copy of a Whisper directory with the encoder's tensors alone: all that encoder
    states (`cache --transcribe` with no languages) need, at a fifth of tiny.en's size, to
    carry the teacher to a machine with an accelerator."""
    directory, out = Path(directory), Path(out)
    cfg = yaml.safe_load((directory / "config.yaml").read_text())
    tensors = load_numpy(str(directory / "model.safetensors"))
    out.mkdir(parents=True, exist_ok=True)
    save_numpy({k: v for k, v in tensors.items() if k.startswith("encoder.")}, str(out / "model.safetensors"))
    for name in ("config.yaml", cfg["vocabulary"]["tokens"]):
        shutil.copyfile(directory / name, out / name)
    return out


def whisper_layers_weights(teacher: Teacher, layers: int, ctx: int) -> dict[str, torch.Tensor]:
    """The teacher's conv front end and first `layers` blocks under the names of the recipe's
    `WhisperLayersEncoder` (`encoder.…`), its positional table at 40 ms (every second row,
    the first `ctx`), and `ln_post` when all the blocks are taken (an inner layer's
    residual stream has no final norm of its own, so the student's starts fresh)."""
    n = teacher.dims.n_audio_layer
    if not 1 <= layers <= n:
        raise ValueError(f"{teacher.directory}: has {n} encoder layers, asked for {layers}")
    if 2 * ctx > teacher.dims.n_audio_ctx:
        raise ValueError(f"{teacher.directory}: {teacher.dims.n_audio_ctx} positions of 20 ms hold "
                         f"{teacher.dims.n_audio_ctx // 2} of 40 ms, asked for {ctx}")
    te = teacher.encoder.state_dict()
    out = {f"encoder.{k}": te[k].clone() for k in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")}
    out["encoder.positional_embedding"] = te["positional_embedding"][0::2][:ctx].clone()
    for k, v in te.items():
        if k.startswith("blocks.") and int(k.split(".")[1]) < layers:
            out[f"encoder.{k}"] = v.clone()
    if layers == n:
        out["encoder.ln_post.weight"], out["encoder.ln_post.bias"] = te["ln_post.weight"].clone(), te["ln_post.bias"].clone()
    return out


def make_random_teacher(directory: str | Path, seed: int = 0, state: int = 32, layers: int = 2, heads: int = 2) -> Path:
    """A Whisper directory with tiny random weights, in the layout `lasr models convert`
    writes: an English-only byte vocabulary (256 byte pieces, the specials, 1501
    timestamps). Smoke runs and tests use it; it transcribes nonsense, deterministically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    byte_names = {b: c for c, b in _byte_decoder().items()}
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    pieces = [byte_names[b] for b in range(256)] + specials + [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    dims = WhisperDims(n_mels=80, n_audio_ctx=1500, n_audio_state=state, n_audio_head=heads, n_audio_layer=layers,
                       n_vocab=len(pieces), n_text_ctx=64, n_text_state=state, n_text_head=heads,
                       n_text_layer=layers)
    ids = {name: 256 + i for i, name in enumerate(specials)}
    cfg = {"format": "lasr-model", "format_version": 1, "architecture": "whisper", "name": directory.name,
           "source": "lasr_train.teacher.make_random_teacher (random weights)",
           "features": {"sample_rate": 16000, "n_fft": 400, "win_length": 400, "hop_length": 160, "n_mels": 80,
                        "f_min": 0.0, "f_max": 8000.0, "log_floor": 1.0e-10, "mel_scale": "slaney",
                        "mel_norm": "slaney", "center": True, "log_base": "10", "dynamic_range": 8.0,
                        "offset": 4.0, "scale": 0.25},
           "whisper": {k: getattr(dims, k) for k in WhisperDims.__dataclass_fields__},
           "vocabulary": {"type": "byte-bpe", "size": len(pieces), "tokens": "tokens.txt", "english_only": True,
                          "end_of_text": ids["<|endoftext|>"], "start_of_transcript": ids["<|startoftranscript|>"],
                          "translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"],
                          "start_of_lm": ids["<|startoflm|>"], "start_of_previous": ids["<|startofprev|>"],
                          "no_speech": ids["<|nocaptions|>"], "no_timestamps": ids["<|notimestamps|>"],
                          "timestamp_begin": 256 + len(specials), "suppress_tokens": []}}
    (directory / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (directory / "tokens.txt").write_text("\n".join(pieces), encoding="utf-8")
    net = nn.ModuleDict({"encoder": AudioEncoder(dims), "decoder": TextDecoder(dims)})
    tensors = {}
    for name, t in net.state_dict().items():
        scale = 1.0 if name.endswith(("ln.weight", "ln_post.weight", "_ln.weight")) else 0.1
        base = torch.ones_like(t) if scale == 1.0 else torch.randn(t.shape, generator=g) * scale
        tensors[name] = base.to(torch.float16).contiguous()
    save_file(tensors, str(directory / "model.safetensors"))
    return directory


def select(transcripts: str | Path, out: str | Path, min_avg_logprob: float, max_no_speech: float,
           min_words: int = 1) -> tuple[int, int]:
    """Teacher transcripts confident enough to train on (sequence-level distillation,
    Kim & Rush 2016), as a manifest `lasr_train.data` caches: the average token
    log-probability at least `min_avg_logprob` and the no-speech probability at most
    `max_no_speech` (the two tests openai-whisper's `transcribe` falls back on), and at
    least `min_words` words. Returns (kept, read)."""
    kept, read = [], 0
    for line in Path(transcripts).read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        read += 1
        if (d["avg_logprob"] >= min_avg_logprob and d["no_speech_prob"] <= max_no_speech
                and len(d["text"].split()) >= min_words):
            kept.append({k: d[k] for k in ("id", "audio", "duration", "text", "speaker", "corpus")}
                        | {"teacher_avg_logprob": d["avg_logprob"]})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(json.dumps(d) + "\n" for d in kept), encoding="utf-8")
    return len(kept), read


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m lasr_train.teacher", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="run the teacher once over manifests (resumable)")
    c.add_argument("--teacher", required=True, help="a Whisper model directory (lasr models install whisper-base)")
    c.add_argument("--manifest", nargs="+", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--layers", nargs="*", type=int, default=None, help="encoder layers to keep (default: the last)")
    c.add_argument("--transcribe", nargs="*", default=["en"], help="languages to transcribe (none: states only)")
    c.add_argument("--languages", nargs="+", default=None,
                   help="only the lines whose `language` is one of these (say `en`: pseudo-labels of the English "
                        "unlabeled audio without the states of every set); transcribed lines have none")
    c.add_argument("--shard-size", type=int, default=64)
    c.add_argument("--batch", type=int, default=4)
    c.add_argument("--limit", type=int, default=0, help="only the first N utterances of each manifest (smoke runs)")
    c.add_argument("--max-duration", type=float, default=0.0, help="only utterances this short (smoke runs)")
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--device", default="cpu", help="where the encoder runs (cpu, cuda)")
    c.add_argument("--part", default="1/1", metavar="K/N",
                   help="the K-th of N processes filling one cache together (each takes every N-th shard)")
    r = sub.add_parser("random", help="write a Whisper directory with tiny random weights (smoke runs)")
    r.add_argument("--out", required=True)
    r.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("encoder-only", help="copy a Whisper directory with the encoder alone (states, no transcripts)")
    e.add_argument("--teacher", required=True)
    e.add_argument("--out", required=True)
    t = sub.add_parser("transcribe", help="greedy transcripts of audio files (checks the loader)")
    t.add_argument("--teacher", required=True)
    t.add_argument("files", nargs="+")
    t.add_argument("--language", default="en")
    s = sub.add_parser("select", help="the confident teacher transcripts as a training manifest")
    s.add_argument("--cache", required=True, help="a teacher cache (its transcripts.jsonl)")
    s.add_argument("--out", required=True)
    s.add_argument("--min-avg-logprob", type=float, default=-0.5)
    s.add_argument("--max-no-speech", type=float, default=0.3)
    s.add_argument("--min-words", type=int, default=2)
    args = ap.parse_args(argv)
    if args.command == "cache":
        cache(args)
    elif args.command == "select":
        kept, read = select(Path(args.cache) / "transcripts.jsonl", args.out, args.min_avg_logprob,
                            args.max_no_speech, args.min_words)
        print(f"{args.out}: {kept} of {read} teacher transcripts")
    elif args.command == "encoder-only":
        print(encoder_only(args.teacher, args.out))
    elif args.command == "random":
        print(make_random_teacher(args.out, args.seed))
    else:
        teacher = Teacher(args.teacher)
        for f in args.files:
            window, _ = teacher.log_mel_window(load_audio(f)[: WINDOW_SECONDS * SAMPLE_RATE])
            final, _ = teacher.encode(window[None])
            print(f"{f}\t{teacher.transcribe(final, language=args.language).text}")


if __name__ == "__main__":
    main()
