"""Render synthetic read speech with espeak-ng and flite.

Prompts come from public-domain text only (by default the LJ Speech sentence
list, /work/shared/speech/text/ljspeech-sentences.txt); never LibriSpeech
dev/test transcripts. Every prompt is rendered once by a voice drawn at random
(seeded) from a pool of espeak-ng accents x variants (with random rate and
pitch) and flite voices. Output: 16 kHz mono FLAC files plus `manifest.jsonl`
in the same format as the real manifests (audio path relative to the folder).

    python -m lasr_train.synth --text .../ljspeech-sentences.txt --out /work/lasr-runs/synth
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import tempfile
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import resample

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"]
ESPEAK_VARIANTS = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 5)]
FLITE_WANTED = ["kal16", "awb", "rms", "slt"]


def flite_voices() -> list[str]:
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    listed = out.split(":", 1)[-1].split()
    return [v for v in FLITE_WANTED if v in listed]


def pick_voice(rng: random.Random, flite: list[str], flite_share: float) -> dict:
    if flite and rng.random() < flite_share:
        return {"engine": "flite", "voice": rng.choice(flite),
                "stretch": round(rng.uniform(0.85, 1.2), 3),
                "f0": rng.randint(80, 220)}
    return {"engine": "espeak", "voice": f"{rng.choice(ESPEAK_ACCENTS)}+{rng.choice(ESPEAK_VARIANTS)}",
            "rate": rng.randint(130, 210), "pitch": rng.randint(25, 75)}


def render(job: dict) -> dict | None:
    """Render one prompt; returns its manifest entry (without the text) or None on failure."""
    v, text, out_path, seed = job["voice"], job["text"], Path(job["out"]), job["seed"]
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        if v["engine"] == "espeak":
            cmd = ["espeak-ng", "-v", v["voice"], "-s", str(v["rate"]), "-p", str(v["pitch"]),
                   "-w", tmp.name, text]
        else:
            cmd = ["flite", "-voice", v["voice"], "--setf", f"duration_stretch={v['stretch']}",
                   "--setf", f"int_f0_target_mean={v['f0']}", "-t", text, "-o", tmp.name]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
            x, sr = sf.read(tmp.name, dtype="float32", always_2d=True)
        except (OSError, subprocess.SubprocessError, RuntimeError):
            return None
    x = x.mean(axis=1)
    if sr != 16000:
        x = resample(x, int(round(len(x) * 16000 / sr)))
    rng = np.random.default_rng(seed)
    # random leading/trailing silence and gain
    lead, trail = (rng.uniform(0.05, 0.4, size=2) * 16000).astype(int)
    x = np.concatenate([np.zeros(lead, np.float32), x, np.zeros(trail, np.float32)])
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak < 1e-4 or len(x) < 8000:
        return None
    x = x * (rng.uniform(0.2, 0.9) / peak)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out_path), x.astype(np.float32), 16000, format="FLAC", subtype="PCM_16")
    return {"duration": round(len(x) / 16000, 3)}


def read_prompts(paths: list[str]) -> list[str]:
    prompts = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            prompts += [line.strip() for line in f if line.strip()]
    return prompts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", nargs="+", required=True, help="public-domain prompt files, one sentence a line")
    ap.add_argument("--out", required=True)
    ap.add_argument("--passes", type=int, default=1, help="renderings per prompt (different voices)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts (0 = all)")
    ap.add_argument("--flite-share", type=float, default=0.25)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args(argv)

    out = Path(a.out)
    manifest = out / "manifest.jsonl"
    if manifest.exists():
        print(f"{manifest} exists; nothing to do (delete it to re-render)")
        return
    prompts = read_prompts(a.text)
    if a.limit:
        prompts = prompts[: a.limit]
    rng = random.Random(a.seed)
    flite = flite_voices()
    jobs = []
    for p in range(a.passes):
        for i, text in enumerate(prompts):
            uid = f"synth-{p}-{i:05d}"
            jobs.append({"id": uid, "text": text, "voice": pick_voice(rng, flite, a.flite_share),
                         "out": str(out / "audio" / f"p{p}" / f"{i // 1000:02d}" / f"{uid}.flac"), "seed": a.seed * 1000003 + p * 100000 + i})
    hours = defaultdict(float)
    n_ok = 0
    tmp_manifest = out / "manifest.jsonl.partial"
    out.mkdir(parents=True, exist_ok=True)
    with Pool(a.jobs) as pool, open(tmp_manifest, "w", encoding="utf-8") as f:
        for job, res in zip(jobs, pool.imap(render, jobs, chunksize=16)):
            if res is None:
                continue
            v = job["voice"]
            entry = {"id": job["id"], "audio": os.path.relpath(job["out"], out), "duration": res["duration"],
                     "text": job["text"], "speaker": f"{v['engine']}:{v['voice']}",
                     "corpus": f"synth-{v['engine']}", "voice": v}
            f.write(json.dumps(entry) + "\n")
            hours[f"{v['engine']}:{v['voice'].split('+')[0]}"] += res["duration"] / 3600
            n_ok += 1
            if n_ok % 1000 == 0:
                print(f"{n_ok}/{len(jobs)} rendered, {sum(hours.values()):.2f} h", flush=True)
    tmp_manifest.rename(manifest)
    summary = {"utterances": n_ok, "hours": round(sum(hours.values()), 3),
               "hours_by_voice": {k: round(h, 3) for k, h in sorted(hours.items())}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
