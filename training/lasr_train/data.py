"""Feature cache, length bucketing and augmentation.

Cache layout (default /work/lasr-runs/cache/<set>/):
    s<speed>/shard-<k>.npy   float16 (frames, n_mels): features of a block of utterances, concatenated
    s<speed>/shard-<k>.jsonl one line per utterance: id, corpus, text, duration, offset, frames
    stats.json               per-band mean/std (float64 sums over every cached frame of speed 1.0)
Speed perturbation: the waveform (N samples) is resampled to round(N / speed) samples
(`audio.resample`) before `log_mel`, so speed 1.1 is 10 % faster (and higher). Each
speed is cached separately; an epoch draws one speed per utterance at random.
Additive noise is applied on cached features in the mel power domain:
    F' = log(exp(F) + g * exp(N))
with N the log-mel of seeded white/pink/brown noise and g set from a random SNR —
exactly the expected mel power of signal + independent noise.
SpecAugment (frequency and time masks, value 0 = the mean after normalization)
is applied to normalized features.
"""
from __future__ import annotations

import json
import math
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from .audio import load_audio, resample
from .features import FeatureConfig, log_mel
from .manifest import read_manifest

SHARD_UTTS = 400


def _speed_dir(speed: float) -> str:
    return f"s{speed:.2f}"


def _compute_shard(job):
    out_npy, out_idx, utts, speed, fcfg = job
    if os.path.exists(out_idx):
        return out_idx
    feats, lines, offset = [], [], 0
    for u in utts:
        try:
            x = load_audio(u["path"], fcfg.sample_rate)
        except Exception as e:  # unreadable file: skip it, say so
            print(f"skip {u['id']}: {e}", flush=True)
            continue
        if speed != 1.0:
            x = resample(x, int(round(len(x) / speed)))
        f = log_mel(x, fcfg).astype(np.float16)
        if len(f) == 0:
            continue
        feats.append(f)
        lines.append({"id": u["id"], "corpus": u["corpus"], "text": u["text"], "speaker": u["speaker"],
                      "duration": round(len(x) / fcfg.sample_rate, 3), "offset": offset, "frames": len(f)})
        offset += len(f)
    arr = np.concatenate(feats) if feats else np.zeros((0, fcfg.n_mels), np.float16)
    np.save(out_npy + ".tmp.npy", arr)
    os.replace(out_npy + ".tmp.npy", out_npy)
    with open(out_idx + ".tmp", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    os.replace(out_idx + ".tmp", out_idx)
    return out_idx


def build_cache(manifests: list[str], out_dir: str | Path, fcfg: FeatureConfig, speeds=(1.0,),
                jobs: int = 2, limit: int = 0, max_duration: float = 0.0, unlabeled: bool = False) -> None:
    """Compute (or complete: existing shards are kept) the cache of one set; `unlabeled`
    admits utterances without a transcript (for distillation only)."""
    out = Path(out_dir)
    utts = []
    for m in manifests:
        utts += [u.__dict__ for u in read_manifest(m, require_text=not unlabeled)]
    if max_duration:
        utts = [u for u in utts if u["duration"] <= max_duration]
    if limit:
        utts = utts[:limit]
    work = []
    for sp in speeds:
        d = out / _speed_dir(sp)
        d.mkdir(parents=True, exist_ok=True)
        for k in range(0, len(utts), SHARD_UTTS):
            work.append((str(d / f"shard-{k // SHARD_UTTS:04d}.npy"), str(d / f"shard-{k // SHARD_UTTS:04d}.jsonl"),
                         utts[k:k + SHARD_UTTS], sp, fcfg))
    todo = [w for w in work if not os.path.exists(w[1])]
    print(f"cache {out}: {len(work)} shards, {len(todo)} to compute", flush=True)
    if todo:
        if jobs > 1:
            with Pool(jobs) as pool:
                for i, _ in enumerate(pool.imap_unordered(_compute_shard, todo), 1):
                    print(f"  {out.name}: shard {i}/{len(todo)} done", flush=True)
        else:
            for w in todo:
                _compute_shard(w)
    stats_path = out / "stats.json"
    if not stats_path.exists() or todo:
        s1 = np.zeros(fcfg.n_mels)
        s2 = np.zeros(fcfg.n_mels)
        n = 0
        for npy in sorted((out / _speed_dir(1.0)).glob("shard-*.npy")):
            a = np.load(npy).astype(np.float64)
            s1 += a.sum(0)
            s2 += (a * a).sum(0)
            n += len(a)
        stats_path.write_text(json.dumps({"frames": n, "sum": s1.tolist(), "sum_sq": s2.tolist()}) + "\n")


def combined_stats(cache_dirs: list[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """Global per-band mean and std over the speed-1.0 features of several cached sets."""
    s1 = s2 = 0.0
    n = 0
    for d in cache_dirs:
        st = json.loads((Path(d) / "stats.json").read_text())
        s1 = s1 + np.array(st["sum"])
        s2 = s2 + np.array(st["sum_sq"])
        n += st["frames"]
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 1e-8))
    return mean.astype(np.float32), std.astype(np.float32)


class FeatureStore:
    """Read access to a cached set: utterances per speed, features by (speed, index)."""

    def __init__(self, cache_dir: str | Path):
        self.dir = Path(cache_dir)
        self.speeds = sorted(float(p.name[1:]) for p in self.dir.glob("s*") if p.is_dir())
        self.utts = {}   # speed -> list of dict (with "shard")
        self.arrays = {}
        for sp in self.speeds:
            lst = []
            for idx in sorted((self.dir / _speed_dir(sp)).glob("shard-*.jsonl")):
                npy = str(idx)[:-6] + ".npy"
                for line in idx.read_text(encoding="utf-8").splitlines():
                    d = json.loads(line)
                    d["shard"] = npy
                    lst.append(d)
            self.utts[sp] = lst

    def features(self, utt: dict) -> np.ndarray:
        arr = self.arrays.get(utt["shard"])
        if arr is None:
            arr = self.arrays[utt["shard"]] = np.load(utt["shard"], mmap_mode="r")
        return np.asarray(arr[utt["offset"]: utt["offset"] + utt["frames"]], dtype=np.float32)


def noise_profiles(fcfg: FeatureConfig, seconds: float = 4.0, seed: int = 7) -> list[np.ndarray]:
    """Log-mel of unit-RMS white, pink and brown noise (seeded)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fcfg.sample_rate)
    out = []
    for exponent in (0.0, 1.0, 2.0):
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / f ** (exponent / 2), n=n)
        x /= np.sqrt(np.mean(x * x))
        out.append(log_mel(x * 0.1, fcfg))
    return out


def add_noise(feats: np.ndarray, profile: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    t = len(feats)
    start = int(rng.integers(0, max(1, len(profile) - 1)))
    idx = (start + np.arange(t)) % len(profile)
    noise = np.exp(profile[idx].astype(np.float64))
    sig = np.exp(feats.astype(np.float64))
    g = sig.mean() / noise.mean() / (10.0 ** (snr_db / 10.0))
    return np.log(sig + g * noise).astype(np.float32)


def spec_augment(x: torch.Tensor, length: int, g: torch.Generator, n_freq=2, max_f=27, n_time=2,
                 max_t=40, max_t_ratio=0.05) -> torch.Tensor:
    """In place on one normalized (T, F) tensor: n_freq frequency masks, n_time time masks."""
    n_mels = x.shape[1]
    for _ in range(n_freq):
        w = int(torch.randint(0, max_f + 1, (1,), generator=g))
        f0 = int(torch.randint(0, max(1, n_mels - w), (1,), generator=g))
        x[:, f0:f0 + w] = 0
    tmax = min(max_t, int(max_t_ratio * length))
    for _ in range(n_time):
        if tmax < 1:
            break
        w = int(torch.randint(0, tmax + 1, (1,), generator=g))
        t0 = int(torch.randint(0, max(1, length - w), (1,), generator=g))
        x[t0:t0 + w] = 0
    return x


def make_batches(lengths: list[int], max_frames: int, max_batch: int, rng: np.random.Generator,
                 bucket_width: int = 50) -> list[list[int]]:
    """Bucketing: sort by length (ties broken randomly), cut batches whose padded size
    (batch x longest) stays under max_frames, then shuffle the batch order."""
    order = np.lexsort((rng.random(len(lengths)), np.asarray(lengths) // bucket_width))
    batches, cur, longest = [], [], 0
    for i in order:
        L = lengths[i]
        if cur and (max(longest, L) * (len(cur) + 1) > max_frames or len(cur) >= max_batch):
            batches.append(cur)
            cur, longest = [], 0
        cur.append(int(i))
        longest = max(longest, L)
    if cur:
        batches.append(cur)
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def collate(feat_list: list[np.ndarray], token_list: list[list[int]]):
    b = len(feat_list)
    T = max(len(f) for f in feat_list)
    U = max(max(len(t) for t in token_list), 1)
    x = torch.zeros(b, T, feat_list[0].shape[1])
    y = torch.full((b, U), -1, dtype=torch.long)
    for i, (f, t) in enumerate(zip(feat_list, token_list)):
        x[i, : len(f)] = torch.from_numpy(f)
        y[i, : len(t)] = torch.tensor(t, dtype=torch.long)
    lengths = torch.tensor([len(f) for f in feat_list])
    tl = torch.tensor([len(t) for t in token_list])
    return x, lengths, y, tl


def main(argv=None):
    import argparse

    from .config import feature_config, load_config
    ap = argparse.ArgumentParser(description="compute the feature cache of one set")
    ap.add_argument("--config", default=None)
    ap.add_argument("--manifests", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--speeds", nargs="+", type=float, default=[1.0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--max-duration", type=float, default=0.0)
    ap.add_argument("--unlabeled", action="store_true",
                    help="admit lines without text (audio for distillation only: lasr_train.train --distill-cache)")
    a = ap.parse_args(argv)
    cfg = load_config(a.config) if a.config else load_config()
    t0 = time.time()
    build_cache(a.manifests, a.out, feature_config(cfg), a.speeds, a.jobs, a.limit, a.max_duration, a.unlabeled)
    print(f"cache {a.out} ready ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
