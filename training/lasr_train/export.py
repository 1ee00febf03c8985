"""Export a checkpoint to a model directory and write the Swift parity fixtures.

    python -m lasr_train.export --checkpoint /work/lasr-runs/default/best.pt \
        --tokens /work/lasr-runs/tokenizer --out models/default \
        --fixtures Tests/LasrTests/Fixtures/model-parity

Model directory (docs/model-format.md): config.yaml, model.safetensors (float16),
tokens.txt, sentencepiece.model (if any; retraining only), MODEL_CARD.md.
The round-trip check loads model.safetensors back into a fresh model (float32
compute on the float16-rounded weights) and requires its outputs to equal those
of the in-memory model whose weights were rounded the same way. Fixtures are
computed from the loaded-back model, in float32.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.numpy import load_file as np_load_file, save_file as np_save_file
from safetensors.torch import load_file, save_file

from .audio import resample
from .config import feature_config
from .decode import attention_greedy, beam_search, ctc_greedy
from .features import log_mel
from .model import LasrModel, ModelArgs, count_params
from .tokenizer import Tokenizer

FORMAT = "lasr-model"
FORMAT_VERSION = "1"
ENGINE_BLOCKS = ("features", "vocabulary", "encoder", "ctc", "decoder", "decoding")


def load_checkpoint_model(ckpt_path, tokens_dir):
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = LasrModel(ModelArgs(**ck["model_args"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck["config"], Tokenizer.load(tokens_dir)


def engine_config(cfg: dict, args: ModelArgs) -> dict:
    out = {"format": FORMAT, "format_version": int(FORMAT_VERSION), "name": cfg.get("name", "default")}
    for k in ENGINE_BLOCKS:
        out[k] = copy.deepcopy(cfg[k])
    out["vocabulary"]["size"] = args.vocab_size
    out["vocabulary"]["tokens"] = "tokens.txt"
    if args.encoder_type == "whisper":
        # The engine reads every shape from the file: what the run's config left to
        # ModelArgs' defaults is written out (the recipe's LayerNorms all use PyTorch's eps).
        e = out["encoder"]
        e.setdefault("kernel_size", args.kernel_size)
        e.setdefault("ff_mult", args.ff_mult)
        e.setdefault("layer_norm_eps", 1.0e-5)
        e["whisper"] = {"state": args.whisper_state, "heads": args.whisper_heads, "layers": args.whisper_layers,
                        "ff": args.whisper_ff, "ctx": args.whisper_ctx, "conv_blocks": args.whisper_conv_blocks}
    return out


def write_config(path, ecfg: dict):
    """A model directory's config.yaml (docs/model-format.md)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("# lasr model config, written by training/lasr_train/export.py (docs/model-format.md)\n")
        yaml.safe_dump(ecfg, f, sort_keys=False, allow_unicode=True)


def set_card_line(card_text: str, key: str, value: str) -> str:
    """MODEL_CARD.md with its "- key: value" line replaced, or added at the end of the
    "## Training run" list (for numbers measured after the export)."""
    prefix = f"- {key}:"
    kept = card_text.splitlines()
    for i, l in enumerate(kept):
        if l.startswith(prefix):
            kept[i] = f"{prefix} {value}"
            return "\n".join(kept) + "\n"
    at = next((i + 1 for i, l in enumerate(kept) if l == "## Training run"), len(kept))
    while at < len(kept) and (kept[at] == "" or kept[at].startswith("- ")):
        at += 1
    while at > 0 and kept[at - 1] == "":
        at -= 1
    kept.insert(at, f"{prefix} {value}")
    return "\n".join(kept) + "\n"


def engine_eval(model_dir, manifest: str, lasr: str, jobs: int = 2, extra: tuple[str, ...] = ()) -> dict:
    """`lasr eval`'s scores of a model directory on a manifest (its --summary-json); `extra`:
    more arguments of `lasr eval` (`--no-lm`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        subprocess.run([lasr, "eval", "--model", str(model_dir), "--manifest", manifest, "--jobs", str(jobs),
                        "--summary-json", str(out), *extra], check=True)
        return json.loads(out.read_text())


def export_model(model: LasrModel, cfg: dict, tokens_dir, out_dir, card_info: dict | None = None,
                 synth_summary: dict | list[dict] | None = None,
                 earlier_synth: list[str] | None = None) -> LasrModel:
    """Write the model directory; returns the in-memory model with float16-rounded weights.

    `synth_summary`: the summary.json of each synthetic set the run trained on."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok_dir = Path(tokens_dir)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out / "model.safetensors"),
              metadata={"format": FORMAT, "format_version": FORMAT_VERSION, "dtype": "float16"})
    shutil.copy(tok_dir / "tokens.txt", out / "tokens.txt")
    if (tok_dir / "sentencepiece.model").exists():
        shutil.copy(tok_dir / "sentencepiece.model", out / "sentencepiece.model")
    write_config(out / "config.yaml", engine_config(cfg, model.args))
    write_model_card(out, model, cfg, card_info or {}, synth_summary, earlier_synth)
    rounded = LasrModel(model.args)
    rounded.load_state_dict({k: v.float() for k, v in sd.items()})
    rounded.eval()
    return rounded


def load_model_dir(model_dir):
    """Model (float32 compute from the stored float16 weights), engine config and tokenizer."""
    d = Path(model_dir)
    cfg = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8"))
    tok = Tokenizer.load(d)
    args = ModelArgs.from_config(cfg, tok.size)
    model = LasrModel(args)
    sd = {k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()}
    model.load_state_dict(sd)
    model.eval()
    return model, cfg, tok


@torch.no_grad()
def model_outputs(model: LasrModel, feats: torch.Tensor, steps: int = 5, max_len_ratio: float = 0.5):
    enc, enc_len = model.encode(feats[None], torch.tensor([feats.shape[0]]))
    lp = torch.log_softmax(model.ctc(enc), -1)
    seqs, att, dlp = attention_greedy(model, enc, enc_len, max_len_ratio, return_trace=steps)
    return {"encoder_out": enc[0], "ctc_logprobs": lp[0], "attention": att[0], "logprobs": dlp[0],
            "greedy": seqs[0]}


def round_trip_check(rounded: LasrModel, model_dir, feats: torch.Tensor) -> float:
    """Max abs difference between the rounded in-memory model and the reloaded one (must be 0)."""
    loaded, _, _ = load_model_dir(model_dir)
    a = model_outputs(rounded, feats)
    b = model_outputs(loaded, feats)
    diff = max(float((a[k] - b[k]).abs().max()) for k in ("encoder_out", "ctc_logprobs", "attention", "logprobs"))
    if diff > 1e-6 or a["greedy"] != b["greedy"]:
        raise RuntimeError(f"round trip mismatch: max abs diff {diff}")
    return diff


def render_espeak(text: str, voice: str = "en-us", rate: int = 160) -> np.ndarray:
    """Deterministic espeak-ng rendering at 16 kHz, float32, peak 0.5."""
    import soundfile as sf
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", tmp.name, text], check=True,
                       capture_output=True)
        x, sr = sf.read(tmp.name, dtype="float32", always_2d=True)
    x = x.mean(1)
    if sr != 16000:
        x = resample(x, int(round(len(x) * 16000 / sr)))
    return (x * (0.5 / max(float(np.abs(x).max()), 1e-6))).astype(np.float32)


def write_fixtures(model_dir, fixture_dir, text: str, waveform: np.ndarray | None = None, source: str = "") -> dict:
    """Parity fixtures computed from the model as stored in model_dir."""
    model, cfg, tok = load_model_dir(model_dir)
    fcfg = feature_config(cfg)
    dc = cfg["decoding"]
    x = render_espeak(text) if waveform is None else waveform.astype(np.float32)
    feats = log_mel(x, fcfg)
    o = model_outputs(model, torch.from_numpy(feats), 5, dc["max_len_ratio"])
    nb = beam_search(model, o["encoder_out"], o["ctc_logprobs"], beam=dc["beam"], ctc_weight=dc["ctc_weight"],
                     length_normalization=dc["length_normalization"], max_len_ratio=dc["max_len_ratio"],
                     eos_threshold=dc["eos_threshold"])
    fd = Path(fixture_dir)
    fd.mkdir(parents=True, exist_ok=True)
    tensors = {"waveform": x, "features": feats,
               "encoder_out": o["encoder_out"].numpy().astype(np.float32),
               "ctc_logprobs": o["ctc_logprobs"].numpy().astype(np.float32),
               "attention": o["attention"].numpy().astype(np.float32),
               "logprobs": o["logprobs"].numpy().astype(np.float32)}
    sha = hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()
    np_save_file(tensors, str(fd / "parity.safetensors"),
                 metadata={"model_sha256": sha, "text": text, "format_version": FORMAT_VERSION})
    info = {
        "model_sha256": sha,
        "prompt_text": text,
        "prompt_source": source,
        "decoding": dc,
        "greedy_tokens": o["greedy"],
        "greedy_text": tok.decode(o["greedy"]),
        "ctc_greedy_tokens": ctc_greedy(o["ctc_logprobs"][None], torch.tensor([o["ctc_logprobs"].shape[0]]))[0],
        "nbest": [{"tokens": h["tokens"], "text": tok.decode(h["tokens"]), "score": h["score"],
                   "raw_score": h["raw_score"], "att": h["att"], "ctc": h["ctc"]} for h in nb],
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
    }
    (fd / "parity.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def refresh_fixtures(model_dir, fixture_dir) -> dict:
    """Recompute a fixture directory from its own stored waveform and prompt, for when the
    reference algorithms change but the model does not (the model's hash must match)."""
    fd = Path(fixture_dir)
    info = json.loads((fd / "parity.json").read_text())
    sha = hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()
    if info["model_sha256"] != sha:
        raise SystemExit(f"{fd}: fixtures belong to model {info['model_sha256'][:12]}, {model_dir} is {sha[:12]}")
    waveform = np_load_file(str(fd / "parity.safetensors"))["waveform"]
    return write_fixtures(model_dir, fd, info["prompt_text"], waveform=waveform, source=info.get("prompt_source", ""))


def augmentation_summary(training: dict) -> str:
    """What the checkpoint's final training config applied, for the model card."""
    aug = training.get("augment", {})
    parts = []
    if training.get("speeds"):
        parts.append("speed perturbation " + "/".join(str(v) for v in training["speeds"]) + " (real speech)")
    if aug.get("specaugment"):
        parts.append("SpecAugment")
    if aug.get("noise_prob"):
        parts.append(f"additive noise ({aug['noise_prob']:.0%} of utterances)")
    for key, name in (("reverb_prob", "simulated reverberation"), ("real_noise_prob", "real noise recordings (--noise-cache)"),
                      ("colour_prob", "microphone colouring"), ("telephone_prob", "telephone band")):
        if aug.get(key):
            parts.append(f"{name} ({aug[key]:.0%})")
    return ", ".join(parts) or "none"


ENGINE_NAMES = {"espeak": "espeak-ng"}   # lasr_train.synth's short names that differ from the program's


def synthetic_summary(summary: dict | None) -> str:
    """The synthetic set's line of the model card, from lasr_train.synth's summary.json."""
    if not summary:
        return "synthetic speech rendered by lasr_train.synth (its summary.json was not given to the export)"
    by_engine = {}
    for voice, hours in summary.get("hours_by_voice", {}).items():
        engine = voice.split(":", 1)[0]
        by_engine[engine] = by_engine.get(engine, 0.0) + hours
    engines = ", ".join(f"{ENGINE_NAMES.get(e, e)} {h:.1f} h" for e, h in sorted(by_engine.items(), key=lambda x: -x[1]))
    prompts = ", ".join(summary.get("prompts", [])) or "prompt files not recorded"
    if summary.get("prompt_range"):
        first, end = summary["prompt_range"]
        prompts += f", prompts {first + 1}-{end}, seed {summary.get('seed')}"
    return (f"{summary.get('hours', sum(by_engine.values())):.1f} h of synthetic speech ({engines}) rendered by "
            f"lasr_train.synth from public-domain text ({prompts})")


EARLIER = " (learned by the model this run started from)"
# A set the run itself trained on (again, or for the first time), beside those its start model learned.
NEW_IN_RUN = " (trained on in this run)"


def bare_synthetic_line(line: str) -> str:
    """A card's synthetic-speech line without the marker of which model learned it."""
    # " (new in this run)": the marker of hand-edited cards before NEW_IN_RUN existed.
    return line.removesuffix(EARLIER).removesuffix(NEW_IN_RUN).removesuffix(" (new in this run)")


def write_model_card(out: Path, model: LasrModel, cfg: dict, info: dict,
                     synth: dict | list[dict] | None = None, earlier_synth: list[str] | None = None):
    """MODEL_CARD.md; `synth`: the summary of each synthetic set of this run; `earlier_synth`: the
    synthetic-speech lines of the model a run started from (`--init-model`), whose weights learned
    from that data too."""
    a = model.args
    earlier = EARLIER
    # None: not told (a line says so); []: the run learned from no synthetic speech of its own.
    own = [synthetic_summary(s) for s in (synth if isinstance(synth, list) else [synth])] \
        if synth != [] else []
    # A set this run trained on again is listed once, as this run's; each earlier set once.
    earlier_bare = [l for l in dict.fromkeys(bare_synthetic_line(l) for l in earlier_synth or []) if l not in own]
    synth_lines = [f"- {l}{earlier}" for l in earlier_bare]
    synth_lines += [f"- {l}{NEW_IN_RUN if earlier_bare else ''}" for l in own]
    whisper = a.encoder_type == "whisper"
    if whisper:
        scale = float((cfg.get("training") or {}).get("encoder_lr_scale", 1.0))
        kind = "the first layers of a Whisper encoder (OpenAI, MIT licence) read at 40 ms"
        encoder_line = (f"- encoder: Whisper's conv front end and {a.whisper_layers} of its layers (width "
                        f"{a.whisper_state}, {a.whisper_heads} heads, MLP {a.whisper_ff}), frame pairs averaged to 40 ms, "
                        f"projected to d={a.d_model}, then {a.whisper_conv_blocks} conv blocks (kernel {a.kernel_size}, "
                        f"block MLP {a.ff_mult}d); the Whisper layers' weights are OpenAI's (MIT licence), "
                        + ("kept frozen in training" if scale == 0 else f"fine-tuned at {scale:g} of the learning rate"))
    else:
        kind = "convolutional encoder"
        encoder_line = (f"- encoder: {a.num_blocks} conv blocks, d={a.d_model}, kernel {a.kernel_size}, "
                        f"block MLP {a.ff_mult}d, 4x subsampling (40 ms frames)")
    lines = [
        f"# lasr model `{cfg.get('name', 'default')}`", "",
        f"Offline English speech recognizer for the lasr engine: {kind}, CTC head and an LSTM",
        "listen-attend-spell decoder with " + a.attention_type + " attention, decoded jointly (CTC + attention beam search).",
        "Format: docs/model-format.md (format version " + FORMAT_VERSION + ").", "",
        "## Model", "",
        f"- parameters: {count_params(model):,} (stored as float16)",
        encoder_line,
        f"- decoder: LSTM {a.hidden}, embedding {a.embed_dim}, attention dim {a.attention_dim}",
        f"- vocabulary: {a.vocab_size} entries ({cfg['vocabulary']['type']})",
        f"- features: 80 log-mel bands, 25 ms / 10 ms"
        + (", Whisper's filterbank in natural log" if whisper else "") + " (docs/features.md)", "",
        "## Training data", "",
        "- LibriSpeech train-clean-5 (mini LibriSpeech, openslr 31), CC BY 4.0",
        "- speechocean762 train (openslr 101), free for commercial and non-commercial use",
        "- 364 LJ Speech 1.1 excerpts, public domain",
        *synth_lines,
        ("- augmentation at the end of the run: " + augmentation_summary(cfg["training"]) if cfg.get("training")
         else "- augmentation: not recorded in exported weights (see the training run below)"), "",
        "## Training run", "",
    ]
    for k, v in info.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Limitations", "",
              "Trained on tens of hours of real speech at most, most of it read English, plus synthetic speech",
              "(the training run above says which): expect high error rates on",
              "spontaneous, noisy or accented speech and on vocabulary outside read books. Output is lowercase",
              "words without punctuation or digits (numbers come out spelled).", ""]
    (out / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


def pick_fixture_sentence(path: str, min_words: int = 5, max_words: int = 7) -> str:
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        w = line.split()
        if min_words <= len(w) <= max_words and line.strip().endswith("."):
            return line.strip()
    raise RuntimeError("no fixture sentence found")


def card_synthetic_speech(card_lines: list[str]) -> list[str]:
    """The synthetic-speech items of a MODEL_CARD.md's "Training data" section."""
    out, inside = [], False
    for l in card_lines:
        if l.startswith("## "):
            inside = l[3:].strip() == "Training data"
        elif inside and l.startswith("- ") and "synthetic speech" in l:
            out.append(l[2:])
    return out


def init_synthetic_speech(init: dict | None) -> list[str]:
    """Synthetic-speech lines of the card of the model a run started from: as the checkpoint
    recorded them, else from that model's folder if it still holds the same weights."""
    if not init:
        return []
    if "its_synthetic_speech" in init:
        return init["its_synthetic_speech"]
    d = Path(init["model"])
    if not (d / "MODEL_CARD.md").exists() or \
            hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest() != init["sha256"]:
        print(f"note: {d} no longer holds the model this run started from; its synthetic speech is not on the card")
        return []
    return card_synthetic_speech((d / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines())


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--refresh-fixtures", nargs=2, metavar=("MODEL_DIR", "FIXTURE_DIR"),
                    help="only recompute FIXTURE_DIR from MODEL_DIR and the fixture's own waveform")
    ap.add_argument("--checkpoint")
    ap.add_argument("--tokens")
    ap.add_argument("--out")
    ap.add_argument("--fixtures", default=None)
    ap.add_argument("--fixture-text-file", default="/work/shared/speech/text/ljspeech-sentences.txt")
    ap.add_argument("--card", default=None, help="JSON file with training facts for MODEL_CARD.md")
    ap.add_argument("--synth-summary", nargs="+", default=[],
                    help="summary.json of each synthetic set the model was trained on (for MODEL_CARD.md); "
                         "'none': the run learned from no synthetic speech of its own")
    ap.add_argument("--decoding", nargs="+", default=[], metavar="KEY=VALUE",
                    help="search defaults for config.yaml's decoding block other than the run's (tuned on dev), "
                         "e.g. beam=12")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--require-wer-below", type=float, default=0.0,
                    help="export only if the checkpoint's best LibriSpeech dev greedy WER is below this")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.refresh_fixtures:
        fi = refresh_fixtures(*a.refresh_fixtures)
        print(f"fixtures {a.refresh_fixtures[1]}: best {fi['nbest'][0]['text'] if fi['nbest'] else ''!r}")
        return
    missing = [f"--{k}" for k in ("checkpoint", "tokens", "out") if getattr(a, k) is None]
    if missing:
        ap.error("the following arguments are required: " + ", ".join(missing))
    if a.require_wer_below:
        best = torch.load(a.checkpoint, map_location="cpu", weights_only=False).get("best") or {}
        if best.get("wer") is None or best["wer"] >= a.require_wer_below:
            print(f"not exporting: best LibriSpeech dev greedy WER {best.get('wer')} is not below "
                  f"{a.require_wer_below}")
            return
    model, cfg, tok = load_checkpoint_model(a.checkpoint, a.tokens)
    for item in a.decoding:
        key, sep, value = item.partition("=")
        if not sep or key not in cfg["decoding"]:
            raise SystemExit(f"--decoding {item}: expected KEY=VALUE with KEY one of {', '.join(cfg['decoding'])}")
        cfg["decoding"][key] = yaml.safe_load(value)
    info = json.loads(Path(a.card).read_text()) if a.card else {}
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    averaged = ck.get("averaged_steps")
    info.setdefault("checkpoint", (f"weights averaged over steps {', '.join(map(str, averaged))} (lasr_train.average); "
                                   if averaged else "") + f"step {ck['step']}, epoch {ck['epoch']}, "
                    f"{ck.get('audio_seconds', 0) / 3600:.1f} h of audio seen")
    if ck.get("init"):
        # A run started from an exported model: its step and hours count from that start.
        init = ck["init"]
        info.setdefault("initialized from", f"{init['model']} (model.safetensors {init['sha256'][:12]}"
                        + (f"; its card: {init['its_checkpoint']}" if init.get("its_checkpoint") else "")
                        + "); the step and hours of this card count from there")
    legs, r = [], ck.get("restarted_from")
    while r:
        legs.append(f"step {r['step']} (epoch {r['epoch']})")
        r = r.get("earlier")
    if legs:
        info.setdefault("schedule restarted", "the run went on with its rate schedule started again "
                        "(lasr_train.train --restart-from) after an earlier leg's " + ", and before that ".join(legs)
                        + "; the step and epoch above count from the last restart, the hours from the run's start")
    if ck.get("teacher"):
        t = ck["teacher"]
        sets = ", ".join(Path(m).name for m in t.get("manifests", []))
        info.setdefault("teacher", f"{t['teacher']} (OpenAI Whisper, MIT licence), run once over {sets} by "
                        f"lasr_train.teacher; its encoder layers {sorted(set(t['student_blocks'].values()))} "
                        f"regressed by student blocks {t['student_blocks']} (L1 + cosine, weight {t['weight']}); "
                        f"the heads were dropped at export")
    if ck.get("best"):
        # The run's best by its own greedy measure, which need not be this checkpoint.
        info.setdefault(f"greedy dev WER of the run's best step so far (step {ck['best'].get('step')}, "
                        "training-time dev subset)", json.dumps(ck["best"].get("dev")))
    synth = [] if a.synth_summary == ["none"] else [json.loads(Path(p).read_text()) for p in a.synth_summary] or None
    # An average of exported models (lasr_train.average) brings the synthetic speech of their cards.
    earlier = init_synthetic_speech(ck.get("init")) + ck.get("inputs_synthetic_speech", [])
    rounded = export_model(model, cfg, a.tokens, a.out, info, synth, earlier)
    if not Path(a.fixture_text_file).is_file():
        raise SystemExit(f"--fixture-text-file {a.fixture_text_file}: no such file; the export checks its round trip "
                         f"(and writes --fixtures) on a sentence of it, so pass a text file (the model files are written)")
    text = pick_fixture_sentence(a.fixture_text_file)
    feats = torch.from_numpy(log_mel(render_espeak(text), feature_config(cfg)))
    diff = round_trip_check(rounded, a.out, feats)
    unrounded = model_outputs(model, feats)
    drift = float((unrounded["encoder_out"] - model_outputs(rounded, feats)["encoder_out"]).abs().max())
    size = sum(p.stat().st_size for p in Path(a.out).iterdir())
    print(f"exported {a.out}: {size / 1e6:.2f} MB; round trip max diff {diff}; "
          f"float16 rounding changes encoder output by at most {drift:.4f}")
    if a.fixtures:
        fi = write_fixtures(a.out, a.fixtures, text, source=Path(a.fixture_text_file).name)
        fsize = sum(p.stat().st_size for p in Path(a.fixtures).iterdir())
        print(f"fixtures {a.fixtures}: {fsize / 1e3:.0f} KB; text {text!r}; best {fi['nbest'][0]['text'] if fi['nbest'] else ''!r}")


if __name__ == "__main__":
    main()
