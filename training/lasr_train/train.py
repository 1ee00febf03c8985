"""Train the lasr model on cached features.

    python -m lasr_train.train --config configs/default.yaml --tokens DIR \
        --train-cache /work/lasr-runs/cache/train:2 /work/lasr-runs/cache/synth:1 \
        --dev-cache /work/lasr-runs/cache/dev --out /work/lasr-runs/default [--resume]
        [--init-model models/default]

`--train-cache DIR:R` lists a cached set R times per epoch (each time with a fresh
random speed per utterance). Checkpoints: OUT/last.pt (every
`training.checkpoint_minutes` and at each epoch end), OUT/epoch-NNN.pt, OUT/best.pt
(best dev greedy WER on the LibriSpeech part of the dev subset). A checkpoint holds
model args, config, model and optimizer state, step, epoch, position in the epoch and
every RNG state, so `--resume` continues exactly where it stopped.

`--init-model DIR` starts a new run from the weights of an exported model directory
(docs/model-format.md) instead of random ones: the architecture, features and
vocabulary come from DIR, the training settings from the config and `--set`. An
exported model keeps no optimizer state, so such a run starts a fresh Adam at step 0
under its own schedule (a short warmup, then e.g. a cooldown). It is how training goes
on when the run's checkpoints are gone, since models/default is always at hand.
With `--set encoder.num_blocks=N encoder.ff_mult=M` such a run grows the encoder,
starting from weights that compute what the exported model did (`grow_encoder_weights`).
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import os
import random
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from .config import feature_config, load_config, merge
from .augment import ChannelAugmenter, FrequencyWarp
from .data import (FeatureStore, add_noise, collate, combined_stats, make_batches, noise_profiles,
                   spec_augment)
from .decode import attention_greedy, ctc_greedy
from .distill import DistillHeads, distill_loss, parse_layers
from .evaluate import wer_counts
from .export import ENGINE_BLOCKS, card_synthetic_speech
from .model import LasrModel, ModelArgs, count_params, length_mask, subsampled_lengths
from .teacher import TeacherStates
from .text import normalize_text
from .tokenizer import Tokenizer


def parse_sets(values):
    out = []
    for v in values:
        path, _, rep = v.partition(":")
        out.append((path, int(rep or 1)))
    return out


def parse_overrides(items):
    over = {}
    for it in items or []:
        key, _, val = it.partition("=")
        d = over
        parts = key.split(".")
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        # YAML 1.1 reads "2:3" as the sexagesimal number 123; a layer map stays text.
        d[parts[-1]] = val if re.fullmatch(r"[0-9:,\s]*:[0-9:,\s]*", val) else yaml.safe_load(val)
    return over


def flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def resumed_config(saved: dict, overrides: dict) -> dict:
    """The checkpoint's config with `--set` overrides applied on resume.

    Only `training.*` may change mid-run (learning rate, augmentation, CTC weight,
    epochs): the rest describes the model and its features, which the checkpoint's
    weights fix. An override of those must agree with the checkpoint.
    """
    saved_flat = dict(flatten(saved))
    for key, value in flatten(overrides):
        if not key.startswith("training.") and saved_flat.get(key) != value:
            raise SystemExit(f"--set {key}={value}: a resumed run keeps the checkpoint's {key} "
                             f"({saved_flat.get(key)!r}); only training.* settings can change on resume")
    return merge(saved, {"training": overrides.get("training", {})})


def init_model_config(base: dict, model_cfg: dict, overrides: dict) -> dict:
    """The config of a run that starts from an exported model.

    The model directory's engine blocks (features, vocabulary, encoder, ctc, decoder,
    decoding) replace the base config's, because its weights fix them; `--set` may
    change `training.*` only, as on resume.

    A run may also grow the model's encoder (`--set encoder.num_blocks=N encoder.ff_mult=M`,
    neither smaller than the model's): `load_init_model` then starts the added blocks
    and the added MLP units so that the grown model computes what the exported one did.
    """
    blocks = {k: model_cfg[k] for k in ENGINE_BLOCKS if k in model_cfg}
    blocks["vocabulary"] = {k: v for k, v in blocks["vocabulary"].items() if k != "tokens"}
    grow = dict(overrides.get("encoder", {}))
    kind = blocks["encoder"].get("type", "conv")
    if grow and kind != "conv":
        raise SystemExit(f"--set encoder.{next(iter(grow))}: only a conv encoder grows; this model's is {kind!r}")
    has = ", ".join(f"{k} {blocks['encoder'].get(k)}" for k in GROWABLE)
    for key, value in grow.items():
        if key not in GROWABLE or not isinstance(value, int) or value < blocks["encoder"][key]:
            raise SystemExit(f"--set encoder.{key}={value}: a run from an exported model may only grow "
                             f"encoder.num_blocks and encoder.ff_mult (the model has {has})")
    blocks["encoder"] = dict(blocks["encoder"], **grow)
    rest = {k: v for k, v in overrides.items() if k != "encoder"}
    return resumed_config(merge(base, blocks), rest)


GROWABLE = ("num_blocks", "ff_mult")


def grown_block_positions(old: int, new: int) -> list[int]:
    """Where each of `old` conv blocks goes among `new`: spread evenly, first and last kept
    in place, so the added identity blocks sit between trained ones."""
    if old == 1:
        return [0]
    return [round(i * (new - 1) / (old - 1)) for i in range(old)]


def grow_encoder_weights(weights: dict, model: LasrModel, old_blocks: int) -> dict:
    """Map an exported model's weights onto `model`, whose encoder has at least as many
    blocks and at least as wide a block MLP, so that it computes the same function.

    An added block's output layer (ff2) starts at zero, so the block is the identity
    (x + 0); an added MLP unit gets ff1's fresh random row and a zero ff2 column, so it
    adds nothing until trained. Everything else is copied. The same idea as the
    function-preserving growth of Net2Net (Chen et al. 2016) and the identity-initialized
    blocks of LLaMA Pro (Wu et al. 2024).
    """
    fresh = model.state_dict()
    out = {k: v for k, v in weights.items() if not k.startswith("encoder.blocks.")}
    positions = grown_block_positions(old_blocks, len(model.encoder.blocks))
    for old, new in enumerate(positions):
        for name in ("dw.weight", "dw.bias", "norm.weight", "norm.bias", "ff2.bias"):
            out[f"encoder.blocks.{new}.{name}"] = weights[f"encoder.blocks.{old}.{name}"]
        w1, b1 = weights[f"encoder.blocks.{old}.ff1.weight"], weights[f"encoder.blocks.{old}.ff1.bias"]
        w2 = weights[f"encoder.blocks.{old}.ff2.weight"]
        inner = w1.shape[0]
        for name, src in (("ff1.weight", w1), ("ff1.bias", b1)):
            t = fresh[f"encoder.blocks.{new}.{name}"].clone()
            t[:inner] = src
            out[f"encoder.blocks.{new}.{name}"] = t
        t = torch.zeros_like(fresh[f"encoder.blocks.{new}.ff2.weight"])
        t[:, :inner] = w2
        out[f"encoder.blocks.{new}.ff2.weight"] = t
    for new in set(range(len(model.encoder.blocks))) - set(positions):
        for name, t in fresh.items():
            if name.startswith(f"encoder.blocks.{new}."):
                out[name] = torch.zeros_like(t) if name.endswith((".ff2.weight", ".ff2.bias")) else t.clone()
    return out


def load_init_model(model: LasrModel, model_dir, tok: Tokenizer):
    """Load an exported model's weights (float16 -> float32) into `model`, built from the run's
    config, which took the directory's architecture; the run's vocabulary must be the model's."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.safetensors").exists():
        raise SystemExit(f"--init-model {model_dir}: no model.safetensors there (docs/model-format.md)")
    model_tok = Tokenizer.load(model_dir)
    if model_tok.pieces != tok.pieces:
        diff = next((i for i, (a, b) in enumerate(zip(model_tok.pieces, tok.pieces)) if a != b),
                    min(len(model_tok.pieces), len(tok.pieces)))
        raise SystemExit(f"--init-model {model_dir}: its tokens.txt differs from --tokens at id {diff} "
                         f"({len(model_tok.pieces)} vs {len(tok.pieces)} entries); pass --tokens {model_dir}")
    weights = {k: v.float() for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    # A grown run (init_model_config) has more blocks or wider ones than the file; any
    # other mismatch is left to load_state_dict, which names it.
    old = (len({k.split(".")[2] for k in weights if k.startswith("encoder.blocks.")}),
           weights.get("encoder.blocks.0.ff1.weight", torch.empty(0, 0)).shape[0])
    new = (len(model.encoder.blocks), model.encoder.blocks[0].ff1.out_features)
    if old != new and 0 < old[0] <= new[0] and 0 < old[1] <= new[1]:
        weights = grow_encoder_weights(weights, model, old[0])
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:   # names every missing, unexpected or misshapen tensor
        raise SystemExit(f"--init-model {model_dir}: model.safetensors does not fit its config.yaml: {e}")


def lr_at(step, peak, warmup, cooldown_start=None, cooldown_steps=0):
    """Learning rate of a step: linear warmup to `peak`, then inverse square root.

    With `cooldown_start`, the rate reached at that step falls linearly to zero over
    the next `cooldown_steps` steps. A short decay at the end of a long constant- or
    slowly-decaying run reaches the loss a full cosine schedule would, without fixing
    the run's length in advance (Hägele et al. 2024, "Scaling Laws and Compute-Optimal
    Training Beyond Fixed Training Durations").
    """
    step = max(step, 1)
    if cooldown_start is not None and step > cooldown_start:
        left = max(0.0, 1.0 - (step - cooldown_start) / max(cooldown_steps, 1))
        return lr_at(cooldown_start, peak, warmup) * left
    return peak * min(step / warmup, math.sqrt(warmup / step))


def save_checkpoint(path, **payload):
    tmp = str(path) + ".tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def restart_checkpoint(src, dst) -> dict:
    """Write a new run's first checkpoint from another run's: its weights, config and Adam
    moments, with the step, epoch, best and cooldown reset, so that the rate schedule
    (warmup, then inverse square root) starts again. It is how a run whose cooldown has
    run goes on (`--restart-from`); the audio seen so far is kept, and where it came from."""
    ck = torch.load(src, map_location="cpu", weights_only=False)
    ck["restarted_from"] = {"checkpoint": str(src), "step": ck["step"], "epoch": ck["epoch"],
                            "earlier": ck.get("restarted_from")}
    ck.update(step=0, epoch=0, batch_pos=0, best=None)
    ck["config"]["training"].update(cooldown_start=None, cooldown_steps=0)
    save_checkpoint(dst, **ck)
    return ck


def rng_state():
    s = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_initialized():   # dropout on the GPU draws from the GPU's own generator
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s):
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


class TrainData:
    """Items of all training sets, tokenized and filtered.

    `unlabeled` sets (DIR, R) hold audio without transcripts, for distillation only:
    their items have tokens None and are kept only where `has_teacher(id)`."""

    def __init__(self, sets, tokenizer, max_frames_utt, unlabeled=(), has_teacher=None):
        self.stores = []
        self.items = []          # (store, repeat-weight, {speed: utt}, tokens or None)
        self.skipped = 0
        for si, (path, rep) in enumerate(list(sets) + list(unlabeled)):
            st = FeatureStore(path)
            self.stores.append(st)
            by_id = {sp: {u["id"]: u for u in st.utts[sp]} for sp in st.speeds}
            if si >= len(sets):
                for u in st.utts[1.0]:
                    per_speed = {sp: by_id[sp][u["id"]] for sp in st.speeds if u["id"] in by_id[sp]}
                    if has_teacher(u["id"]) and all(v["frames"] <= max_frames_utt for v in per_speed.values()):
                        self.items.append((si, rep, per_speed, None))
                    else:
                        self.skipped += 1
                continue
            for u in st.utts[1.0]:
                toks = tokenizer.encode(normalize_text(u["text"]))
                per_speed = {sp: by_id[sp][u["id"]] for sp in st.speeds if u["id"] in by_id[sp]}
                ok = bool(toks) and all(
                    v["frames"] <= max_frames_utt and int(subsampled_lengths(torch.tensor(v["frames"]))) >= len(toks) + 1
                    for v in per_speed.values())
                if not ok:
                    self.skipped += 1
                    continue
                self.items.append((si, rep, per_speed, toks))

    def epoch_plan(self, seed, epoch, max_frames, max_batch, sortagrad=False):
        rng = np.random.default_rng([seed, epoch])
        entries = []
        for si, rep, per_speed, toks in self.items:
            speeds = sorted(per_speed)
            for _ in range(rep):
                sp = speeds[int(rng.integers(len(speeds)))]
                entries.append((si, per_speed[sp], toks))
        lengths = [e[1]["frames"] for e in entries]
        unlabeled = [i for i, e in enumerate(entries) if e[2] is None]
        if not unlabeled:
            batches = make_batches(lengths, max_frames, max_batch, rng)
        else:   # a batch is all transcribed or all distillation-only
            labeled = [i for i, e in enumerate(entries) if e[2] is not None]
            batches = [[labeled[k] for k in b] for b in make_batches([lengths[i] for i in labeled], max_frames,
                                                                     max_batch, rng)]
            batches += [[unlabeled[k] for k in b] for b in make_batches([lengths[i] for i in unlabeled], max_frames,
                                                                        max_batch, rng)]
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if sortagrad:   # first epoch: short utterances first (helps the attention decoder start)
            batches.sort(key=lambda b: max(lengths[i] for i in b))
        return entries, batches


def dev_subset(store: FeatureStore, n_per_corpus: int, tokenizer):
    by_c = {}
    for u in store.utts[1.0]:
        by_c.setdefault(u["corpus"], []).append(u)
    out = []
    for c in sorted(by_c):
        lst = sorted(by_c[c], key=lambda u: u["id"])
        step = max(1, len(lst) // n_per_corpus) if n_per_corpus else 1
        out += lst[::step][: n_per_corpus or None]
    return out


@torch.no_grad()
def dev_wer(model, store, utts, tokenizer, max_len_ratio, batch_frames=12000):
    """Greedy WER (CTC and attention) by corpus on cached dev utterances."""
    model.eval()
    res = {}
    order = sorted(range(len(utts)), key=lambda i: utts[i]["frames"])
    batches, cur = [], []
    for i in order:
        if cur and utts[i]["frames"] * (len(cur) + 1) > batch_frames:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    for b in batches:
        feats = [store.features(utts[i]) for i in b]
        x, lengths, _, _ = collate(feats, [[0]] * len(b))
        device = model.ctc.weight.device
        enc, enc_len = model.encode(x.to(device), lengths.to(device))
        lp = torch.log_softmax(model.ctc(enc), -1)
        hyp_ctc = ctc_greedy(lp, enc_len)
        hyp_att = attention_greedy(model, enc, enc_len, max_len_ratio)
        for k, i in enumerate(b):
            ref = normalize_text(utts[i]["text"]).split()
            c = utts[i]["corpus"]
            r = res.setdefault(c, {"ctc": [0, 0], "att": [0, 0]})
            for name, hyp in (("ctc", hyp_ctc[k]), ("att", hyp_att[k])):
                e, n = wer_counts(ref, tokenizer.decode(hyp).split())
                r[name][0] += e
                r[name][1] += n
    model.train()
    return {c: {k: round(100.0 * v[0] / max(v[1], 1), 2) for k, v in r.items()} for c, r in res.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description="train lasr")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key.sub=value")
    ap.add_argument("--tokens", default=None,
                    help="folder with tokens.txt (and sentencepiece.model); default: the --init-model folder")
    ap.add_argument("--restart-from", default=None, metavar="CKPT",
                    help="start a new run (OUT without last.pt) from this checkpoint of another run: its weights, "
                         "config and optimizer state, the rate schedule from step 0 (then as --resume)")
    ap.add_argument("--init-model", default=None, metavar="DIR",
                    help="start a new run from the weights of this exported model directory (ignored on resume)")
    ap.add_argument("--train-cache", nargs="*", default=[], metavar="DIR[:R]",
                    help="cached transcribed sets, listed R times an epoch; without any, the run is a "
                         "distillation-only pre-training stage over --distill-cache")
    ap.add_argument("--dev-cache", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where the model trains (cpu, cuda); data is prepared on the CPU")
    ap.add_argument("--prefetch", type=int, default=0, metavar="N",
                    help="prepare the next N batches in worker threads while a step runs (0: in place)")
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop with a checkpoint after this many minutes of training (a fixed-time run)")
    ap.add_argument("--cooldown-minutes", type=float, default=0.0,
                    help="with --max-minutes: that long before the end, start the linear cooldown, its length in "
                         "steps measured from the step rate so far (written into the run's config)")
    ap.add_argument("--distill-cache", nargs="*", default=[], metavar="DIR:R",
                    help="cached sets without transcripts (lasr_train.data --unlabeled), listed R times an "
                         "epoch for the distillation loss alone; needs --teacher-cache")
    ap.add_argument("--teacher-cache", nargs="+", default=None, metavar="DIR",
                    help="teacher caches (lasr_train.teacher cache) of one teacher: distill their encoder states "
                         "into the encoder with weight training.distill.weight")
    ap.add_argument("--noise-cache", default=None, metavar="DIR",
                    help="a feature cache of real noise (lasr_train.data --unlabeled over noise.jsonl), added at "
                         "training.augment.real_noise_prob (lasr_train.augment)")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    if a.cooldown_minutes and not 0 < a.cooldown_minutes < a.max_minutes:
        ap.error("--cooldown-minutes needs --max-minutes, and must be shorter")
    device = torch.device(a.device)
    if not (a.tokens or a.init_model):
        ap.error("--tokens is required (or --init-model, whose tokens.txt is then used)")
    cfg = load_config(a.config) if a.config else load_config()
    overrides = parse_overrides(a.set)
    if a.init_model:
        model_cfg_path = Path(a.init_model) / "config.yaml"
        if not model_cfg_path.exists():
            raise SystemExit(f"--init-model {a.init_model}: no config.yaml there (docs/model-format.md)")
        cfg = init_model_config(cfg, yaml.safe_load(model_cfg_path.read_text(encoding="utf-8")), overrides)
    else:
        cfg = merge(cfg, overrides)
    tc = cfg["training"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / ".lock", "w")
    try:   # one training process per output folder; the lock goes away with the process
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"another training process is writing to {out}; stop it first")
    log = open(out / "train.log", "a", encoding="utf-8")

    def say(msg):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    tok = Tokenizer.load(a.tokens or a.init_model)
    sets = parse_sets(a.train_cache)
    if a.distill_cache and not a.teacher_cache:
        raise SystemExit("--distill-cache needs --teacher-cache: its audio has no transcripts to learn from")
    if not sets and not a.distill_cache:
        raise SystemExit("nothing to train on: give --train-cache (transcribed sets), or --distill-cache and "
                         "--teacher-cache for a distillation-only stage")
    teacher = TeacherStates(*a.teacher_cache) if a.teacher_cache else None
    data = TrainData(sets, tok, int(tc["max_utterance_seconds"] * 100), parse_sets(a.distill_cache),
                     has_teacher=lambda uid: uid in teacher)
    say(f"train items: {len(data.items)} (skipped {data.skipped}) from {sets}")
    dev_store = FeatureStore(a.dev_cache) if a.dev_cache else None
    dev_utts = dev_subset(dev_store, tc.get("dev_subset_per_corpus", 60), tok) if dev_store else []

    ckpt_path = out / "last.pt"
    if a.restart_from and not ckpt_path.exists():
        r = restart_checkpoint(a.restart_from, ckpt_path)["restarted_from"]
        say(f"restarted from {a.restart_from} (its step {r['step']}, epoch {r['epoch']}): step 0, the schedule anew")
    resume = (a.resume or a.restart_from) and ckpt_path.exists()
    if resume:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        cfg = resumed_config(ck["config"], overrides)
        tc = cfg["training"]
        # The dropouts are training settings, so `--set` may change them on resume too.
        margs = ModelArgs(**dict(ck["model_args"], dropout=tc.get("dropout", 0.1),
                                 decoder_dropout=tc.get("decoder_dropout", 0.0)))
    else:
        margs = ModelArgs.from_config(cfg, tok.size)
    seed = int(tc["seed"])
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    model = LasrModel(margs)
    step, epoch, batch_pos, best = 0, 0, 0, None
    ck_teacher = None   # a resumed run's teacher, kept when this leg runs without one
    restarted_from = None   # the runs this one goes on from (--restart-from), for the model card
    audio_seconds = 0.0
    init = None   # where a run started from an exported model came from (kept in every checkpoint)
    if resume:
        model.load_state_dict(ck["model"])
        step, epoch, batch_pos, best = ck["step"], ck["epoch"], ck["batch_pos"], ck.get("best")
        audio_seconds = ck.get("audio_seconds", 0.0)
        init = ck.get("init")
        ck_teacher = ck.get("teacher")
        restarted_from = ck.get("restarted_from")
        set_rng_state(ck["rng"])
        say(f"resumed from {ckpt_path}: step {step}, epoch {epoch}, batch {batch_pos}")
        saved = dict(flatten(ck["config"]["training"]))
        changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in flatten(tc) if saved.get(k) != v]
        if changed:
            say("training settings changed on resume: " + "; ".join(changed))
    elif a.init_model:
        # The normalizer's statistics come with the weights: the model learned on them.
        load_init_model(model, a.init_model, tok)
        card = Path(a.init_model) / "MODEL_CARD.md"
        card_lines = card.read_text(encoding="utf-8").splitlines() if card.exists() else []
        seen = next((l.split(":", 1)[1].strip() for l in card_lines if l.startswith("- checkpoint:")), "")
        # The data the weights already learned from, for this run's model card (the folder
        # may hold another model by the time this run is exported).
        init = {"model": str(a.init_model), "sha256": hashlib.sha256(
            (Path(a.init_model) / "model.safetensors").read_bytes()).hexdigest(), "its_checkpoint": seen,
            "its_synthetic_speech": card_synthetic_speech(card_lines)}
        say(f"initialized from {a.init_model} (model.safetensors {init['sha256'][:12]}; {seen or 'no card'})")
    else:
        # A distillation-only stage has no transcribed sets: its audio gives the statistics.
        mean, std = combined_stats([p for p, _ in sets] or [p for p, _ in parse_sets(a.distill_cache)])
        model.normalizer.mean.copy_(torch.from_numpy(mean))
        model.normalizer.std.copy_(torch.from_numpy(std))
    say(f"model: {count_params(model)} parameters, args {margs.to_dict()}")
    # The optimizer is made after the move, so that its state lives beside the weights
    # (a resumed state is moved there by load_state_dict).
    model.to(device)
    # A pretrained encoder (a Whisper encoder's layers) keeps what it knows only at a rate
    # well below the one that trains a fresh decoder: `encoder_lr_scale` sets its share of
    # the rate (what lasr_train.hybrid adds after it is new and trains at the full rate).
    from .hybrid import optimizer_groups
    scale = float(tc.get("encoder_lr_scale", 1.0))
    groups = optimizer_groups(model, scale)
    opt = torch.optim.Adam(groups, lr=tc["lr"], betas=(0.9, 0.98), eps=1e-9,
                           weight_decay=tc.get("weight_decay", 0.0))
    if resume:
        try:
            opt.load_state_dict(ck["optimizer"])
        except ValueError as e:   # another number of groups: frozen before and not now, or the reverse
            raise SystemExit(f"{ckpt_path}: its optimizer does not fit training.encoder_lr_scale {scale:g} ({e}); "
                             "a run cannot switch between a frozen encoder (0) and a trained one on resume")
        for pg, g in zip(opt.param_groups, groups):   # the scale as set now, not as saved
            pg["scale"] = g["scale"]
    # Encoder distillation: the heads (and their optimizer) live beside the model, so
    # that the export, which writes the model's tensors, never sees them.
    dcfg = tc.get("distill") or {}
    distill_weight = float(dcfg.get("weight", 0.0))
    heads, heads_opt = None, None
    if a.teacher_cache:
        if distill_weight <= 0:
            raise SystemExit("--teacher-cache needs training.distill.weight > 0 (e.g. --set training.distill.weight=0.5)")
        layers = parse_layers(dcfg.get("layers", {margs.num_blocks: teacher.meta["layers"][-1]}))
        missing = sorted(set(layers.values()) - set(teacher.meta["layers"]))
        if missing:
            raise SystemExit(f"training.distill.layers asks for teacher layers {missing}; "
                             f"{' '.join(a.teacher_cache)} holds {teacher.meta['layers']}")
        if not all(1 <= b <= margs.num_blocks for b in layers):
            raise SystemExit(f"training.distill.layers: student blocks are 1…{margs.num_blocks}, got {sorted(layers)}")
        # Their own seed, outside the run's random stream: a resumed run, which restores
        # that stream before building them, then draws what the uninterrupted run drew.
        with torch.random.fork_rng():
            torch.manual_seed(seed + 1)
            heads = DistillHeads(layers, margs.d_model, int(teacher.meta["state_dim"]))
        if resume and ck.get("distill_heads") is not None:
            heads.load_state_dict(ck["distill_heads"])
        heads.to(device)
        heads_opt = torch.optim.Adam(heads.parameters(), lr=tc["lr"], betas=(0.9, 0.98), eps=1e-9)
        if resume and ck.get("distill_heads") is not None:
            heads_opt.load_state_dict(ck["distill_optimizer"])
        covered = sum(1 for _, _, per_speed, t in data.items
                      if t is not None and next(iter(per_speed.values()))["id"] in teacher)
        untranscribed = sum(1 for item in data.items if item[3] is None)
        say(f"distillation from {' '.join(a.teacher_cache)} ({teacher.meta['teacher']}, layers {layers}, weight "
            f"{distill_weight}): {covered} of {len(data.items) - untranscribed} training utterances have teacher "
            f"states, and {untranscribed} without transcripts learn from them alone")
    fcfg = feature_config(cfg)
    noises = noise_profiles(fcfg)
    aug = tc["augment"]
    clips = []
    if a.noise_cache:
        store = FeatureStore(a.noise_cache)
        clips = [store.features(u) for u in store.utts[1.0] if u["frames"] > 0]
        say(f"real noise: {len(clips)} clips, {sum(len(c) for c in clips) / 360000:.2f} h from {a.noise_cache}")
    channel = ChannelAugmenter(aug, fcfg, clips)
    warp = FrequencyWarp(aug, fcfg)
    if warp.enabled:
        say(f"vocal tract length perturbation: {warp.prob:g} of utterances, factor in {list(warp.range)}")
    max_frames = int(tc["batch_seconds"] * 100)

    def checkpoint(path, extra_best=None):
        save_checkpoint(path, model_args=margs.to_dict(), config=cfg, model=model.state_dict(),
                        optimizer=opt.state_dict(), step=step, epoch=epoch, batch_pos=batch_pos,
                        best=best if extra_best is None else extra_best, audio_seconds=audio_seconds,
                        rng=rng_state(), tokens=tok.pieces, init=init, restarted_from=restarted_from,
                        distill_heads=heads.state_dict() if heads else None,
                        # What taught the model, for its card (export): the cache's meta and how it was used.
                        teacher=dict(teacher.meta, student_blocks={str(k): v for k, v in heads.layers.items()},
                                     weight=distill_weight) if heads else ck_teacher,
                        distill_optimizer=heads_opt.state_dict() if heads_opt else None)

    def evaluate_dev():
        nonlocal best
        if not dev_utts:
            return
        t0 = time.time()
        w = dev_wer(model, dev_store, dev_utts, tok, cfg["decoding"]["max_len_ratio"])
        say(f"dev step {step} epoch {epoch}: greedy WER {json.dumps(w)} ({time.time() - t0:.0f} s)")
        with open(out / "dev.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "epoch": epoch, "audio_hours": round(audio_seconds / 3600, 2),
                                "wer": w}) + "\n")
        libri = [v for c, v in w.items() if c.startswith("librispeech")]
        key = min(libri[0]["att"], libri[0]["ctc"]) if libri else None
        if key is not None and (best is None or key < best["wer"]):
            best = {"wer": key, "step": step, "epoch": epoch, "dev": w}
            checkpoint(out / "best.pt")
            say(f"new best (LibriSpeech greedy WER {key}) -> best.pt")

    # SIGINT/SIGTERM end the run at the next step boundary with a checkpoint, so an
    # interrupted session loses no steps (SIGKILL loses at most checkpoint_minutes).
    interrupted = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: interrupted.append(signum))

    wanted = sorted(set(heads.layers.values())) if heads is not None else []

    def prepare(entries, batches, ep, pos):
        """The CPU side of a step: its features with noise and channel, its tokens and teacher
        states, and SpecAugment's generator. Every draw comes from the step's own seeded
        streams, so a step prepared ahead in a worker thread is the step prepared in place."""
        g_np = np.random.default_rng([seed, ep, pos, 1])
        g_t = torch.Generator().manual_seed(int(g_np.integers(2**62)))
        feats, toks, targets = [], [], []
        for i in batches[pos]:
            si, u, t = entries[i]
            f = data.stores[si].features(u)
            if warp.enabled:
                # The speaker first, before any noise or room; its own stream, like the channel's.
                f = warp(f, np.random.default_rng([seed, ep, pos, 3, len(feats)]))
            if g_np.random() < aug["noise_prob"]:
                f = add_noise(f, noises[int(g_np.integers(len(noises)))],
                              float(g_np.uniform(*aug["noise_snr_db"])), g_np)
            if channel.enabled:
                # Its own stream: runs without channel augmentation draw exactly as before.
                f = channel(f, np.random.default_rng([seed, ep, pos, 2, len(feats)]))
            feats.append(f)
            toks.append(t)
            if heads is not None:
                targets.append({l: teacher.states(u["id"], l) for l in wanted} if u["id"] in teacher else None)
        return feats, toks, targets, g_t

    if tc.get("cooldown_start") is not None:
        # A run resumed in its cooldown ends where the cooldown does (the rate is zero after
        # it), so that re-running a finished leg's command trains nothing.
        end = tc["cooldown_start"] + tc.get("cooldown_steps", 0)
        a.max_steps = min(a.max_steps, end) if a.max_steps else end
        if step >= end:
            say(f"its cooldown ended at step {end}: nothing to train (a new leg goes on with --restart-from)")
            return
    pool = ThreadPoolExecutor(a.prefetch) if a.prefetch > 0 else None
    model.train()
    last_ckpt = time.time()
    t_start, secs_start, step_start = time.time(), audio_seconds, step
    deadline = t_start + 60 * a.max_minutes if a.max_minutes else None
    stop = False
    while epoch < tc["epochs"] and not stop:
        entries, batches = data.epoch_plan(seed, epoch, max_frames, tc["max_batch"],
                                           sortagrad=epoch == 0 and tc.get("sortagrad", False))
        if batch_pos == 0:
            say(f"epoch {epoch}: {len(entries)} utterances, {len(batches)} batches, "
                f"{sum(e[1]['frames'] for e in entries) / 360000:.1f} h")
        agg = [0.0, 0.0, 0.0, 0, 0.0, 0]
        ahead = {}
        while batch_pos < len(batches):
            if pool is None:
                feats, toks, targets, g_t = prepare(entries, batches, epoch, batch_pos)
            else:
                for p in range(batch_pos, min(batch_pos + a.prefetch + 1, len(batches))):
                    if p not in ahead:
                        ahead[p] = pool.submit(prepare, entries, batches, epoch, p)
                feats, toks, targets, g_t = ahead.pop(batch_pos).result()
            distill_only = toks[0] is None
            x, lengths, y, yl = collate(feats, [[] for _ in toks] if distill_only else toks)
            frames = lengths.tolist()
            x, lengths, y, yl = x.to(device), lengths.to(device), y.to(device), yl.to(device)
            x = model.normalizer(x)
            if aug["specaugment"]:
                for k in range(len(feats)):
                    spec_augment(x[k], frames[k], g_t, aug["freq_masks"], aug["freq_width"],
                                 aug["time_masks"], aug["time_width"], aug["time_ratio"])
            lr = lr_at(step + 1, tc["lr"], tc["warmup_steps"], tc.get("cooldown_start"), tc.get("cooldown_steps", 0))
            for pg in opt.param_groups:
                pg["lr"] = lr * pg["scale"]
            if heads is not None:
                targets = [None if t is None else {l: v.to(device) for l, v in t.items()} for t in targets]
                if distill_only:   # the encoder alone, for the distillation loss alone
                    masked = x * length_mask(lengths, x.shape[1])[..., None]
                    _, enc_len, kept = model.encoder(masked, lengths, keep=tuple(heads.layers))
                    ld, _ = distill_loss(kept, enc_len, targets, heads, float(dcfg.get("cosine", 1.0)))
                    loss, lc, la = distill_weight * ld, torch.tensor(math.nan), torch.tensor(math.nan)
                else:
                    loss, lc, la, _, (kept, enc_len) = model.forward_loss(
                        x, lengths, y, yl, tc["ctc_weight"], tc["label_smoothing"], keep_blocks=tuple(heads.layers))
                    ld, _ = distill_loss(kept, enc_len, targets, heads, float(dcfg.get("cosine", 1.0)))
                    loss = loss + distill_weight * ld
                agg[4] += float(ld.detach())
                heads_opt.zero_grad(set_to_none=True)
                for pg in heads_opt.param_groups:
                    pg["lr"] = lr
            else:
                loss, lc, la, _ = model.forward_loss(x, lengths, y, yl, tc["ctc_weight"], tc["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), tc["grad_clip"])
            if torch.isfinite(gn):
                opt.step()
                if heads_opt is not None:
                    torch.nn.utils.clip_grad_norm_(heads.parameters(), tc["grad_clip"])
                    heads_opt.step()
            step += 1
            batch_pos += 1
            audio_seconds += sum(frames) / 100.0
            if not distill_only:   # the log's loss, CTC and attention are those of transcribed batches
                agg[0] += float(loss.detach())
                agg[1] += float(lc.detach())
                agg[2] += float(la.detach()) if la is not None else math.nan
                agg[3] += 1
            agg[5] += 1
            if step % tc["log_every"] == 0:
                el = time.time() - t_start
                speed = (audio_seconds - secs_start) / 3600 / (el / 3600) if el > 0 else 0
                distilled = f" distill {agg[4] / agg[5]:.3f}" if heads is not None else ""
                n = max(agg[3], 1)
                # Only the distillation loss when no transcribed batch fell in the interval.
                losses = (f" loss {agg[0] / n:.3f} ctc {agg[1] / n:.3f} att {agg[2] / n:.3f}"
                          f"{' (not trained)' if math.isnan(agg[2]) else ''}") if agg[3] else ""
                say(f"step {step} ep {epoch} {batch_pos}/{len(batches)}{losses}"
                    f"{distilled} lr {lr:.2e} gnorm {float(gn):.2f} "
                    f"audio {audio_seconds / 3600:.2f} h, {speed:.0f} h audio/h wall")
                agg = [0.0, 0.0, 0.0, 0, 0.0, 0]
            if tc.get("eval_every") and step % tc["eval_every"] == 0:
                evaluate_dev()
            if time.time() - last_ckpt > tc["checkpoint_minutes"] * 60:
                checkpoint(ckpt_path)
                last_ckpt = time.time()
                say(f"checkpoint {ckpt_path} (step {step})")
            now = time.time()
            if a.cooldown_minutes and now >= deadline - 60 * a.cooldown_minutes and tc.get("cooldown_start") is None:
                # Sized from this run's own step rate, so that the rate reaches zero at the
                # deadline; the numbers go into the config, and a resume keeps them.
                rate = (step - step_start) / max(now - t_start, 1e-9)
                tc["cooldown_start"], tc["cooldown_steps"] = step, max(1, int(rate * (deadline - now)))
                a.max_steps = step + tc["cooldown_steps"]
                say(f"cooldown from step {step} over {tc['cooldown_steps']} steps ({rate:.2f} steps/s), "
                    f"until step {a.max_steps}")
            out_of_time = deadline is not None and now >= deadline
            # A stop on an epoch's last step still closes the epoch below (its epoch-NNN.pt and
            # dev evaluation), so that the run's record does not depend on where it stopped.
            if ((a.max_steps and step >= a.max_steps) or interrupted or out_of_time) and batch_pos < len(batches):
                stop = True
                break
        if not stop:
            epoch += 1
            batch_pos = 0
            checkpoint(ckpt_path)
            checkpoint(out / f"epoch-{epoch:03d}.pt")
            last_ckpt = time.time()
            say(f"end of epoch {epoch}: checkpoint {ckpt_path}")
            evaluate_dev()
            checkpoint(ckpt_path)
            stop = bool((a.max_steps and step >= a.max_steps) or interrupted
                        or (deadline is not None and time.time() >= deadline))
    if pool is not None:
        pool.shutdown(cancel_futures=True)
    checkpoint(ckpt_path)
    why = f" by signal {signal.Signals(interrupted[0]).name}" if interrupted else ""
    say(f"stopped{why} at step {step}, epoch {epoch}; best {json.dumps(best)}")
    (out / "DONE").write_text(f"step {step} epoch {epoch}\n") if epoch >= tc["epochs"] else None


if __name__ == "__main__":
    main()
