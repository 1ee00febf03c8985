"""A student whose encoder starts as a Whisper encoder's layers (training/README.md,
"Whisper's layers as the encoder").

`init` writes the first checkpoint of such a run: the teacher's conv front end and its
first layers at the student's 40 ms frame rate (model.WhisperLayersEncoder), a native
model's CTC head and speller, and a projection from the one to the other; then
`lasr_train.train --resume --out RUN` trains it like any run. The features are the
teacher's filterbank in natural log, and the normalizer maps them to the teacher's
scale, (log10(mel) + 4) / 4, so that augmentation works in the log domain it knows;
only the teacher's clamp to 8 decades below the utterance's maximum is left out, as it
needs the whole utterance.

    python -m lasr_train.hybrid init --teacher models/whisper-tiny.en --model models/default \\
        --out $RUNS/hy/h4c --encoder-lr-scale 0
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from .config import DEFAULT_CONFIG, load_config
from .data import FeatureStore
from .model import LasrModel, ModelArgs
from .teacher import Teacher, whisper_layers_weights
from .tokenizer import Tokenizer
from .export import card_synthetic_speech
from .train import load_init_model, rng_state, save_checkpoint


def is_pretrained(name: str) -> bool:
    """Whether a parameter is the teacher's (its rate is scaled by `encoder_lr_scale`): the
    encoder's, except the projection and the conv blocks after it, which start fresh."""
    return name.startswith("encoder.") and not name.startswith(("encoder.proj.", "encoder.conv_blocks.",
                                                                  "encoder.conv_norm."))


def optimizer_groups(model: LasrModel, scale: float) -> list[dict]:
    """Adam's parameter groups for `training.encoder_lr_scale`: the pretrained encoder's
    parameters at `scale` of the rate and the rest at the full rate; with 0 they are
    frozen (no gradient, no group), with 1 there is one group, as in runs before the option."""
    if scale == 1.0:
        return [{"params": list(model.parameters()), "scale": 1.0}]
    slow = [p for n, p in model.named_parameters() if is_pretrained(n)]
    fast = [p for n, p in model.named_parameters() if not is_pretrained(n)]
    if scale == 0.0:
        for p in slow:
            p.requires_grad_(False)
        return [{"params": fast, "scale": 1.0}]
    return [{"params": slow, "scale": scale}, {"params": fast, "scale": 1.0}]


def hybrid_config(training_cfg: dict, model_cfg: dict, teacher: Teacher, layers: int, encoder_lr_scale: float,
                  conv_blocks: int = 0) -> dict:
    """The run's config: the native model's vocabulary, CTC head, decoder and decoding, the
    teacher's filterbank in natural log, a `whisper` encoder of the teacher's width with
    `layers` blocks, the native d_model as its output and `conv_blocks` of the native
    encoder's blocks (its kernel and MLP width) after it, the training block of `training_cfg`."""
    f = asdict(teacher.features)
    f.update(log_base="e", dynamic_range=None, offset=0.0, scale=1.0)
    dims = teacher.dims
    cfg = {"name": f"{model_cfg.get('name', 'default')}-{teacher.directory.name}-{layers}",
           "features": f,
           "vocabulary": copy.deepcopy(model_cfg["vocabulary"]),
           "encoder": {"type": "whisper", "d_model": model_cfg["encoder"]["d_model"],
                       "whisper": {"state": dims.n_audio_state, "heads": dims.n_audio_head, "layers": layers,
                                   "ff": 4 * dims.n_audio_state, "ctx": dims.n_audio_ctx // 2,
                                   "conv_blocks": conv_blocks}},
           "ctc": copy.deepcopy(model_cfg["ctc"]),
           "decoder": copy.deepcopy(model_cfg["decoder"]),
           "decoding": copy.deepcopy(model_cfg["decoding"]),
           "training": copy.deepcopy(training_cfg["training"])}
    if conv_blocks:
        cfg["encoder"].update(kernel_size=model_cfg["encoder"]["kernel_size"], ff_mult=model_cfg["encoder"]["ff_mult"])
    cfg["training"]["encoder_lr_scale"] = encoder_lr_scale
    return cfg


@torch.no_grad()
def fit_projection(model: LasrModel, native: LasrModel, hybrid_cache: str, native_cache: str,
                   utterances: int, ridge: float = 1e-2) -> float:
    """Set the encoder's projection to the ridge regression of the native encoder's output on
    the hybrid's states before it, over the same utterances of two feature caches (each
    model's own features), so that the native speller starts from inputs near its own.
    Returns the residual's share of the target variance."""
    hs, ns = FeatureStore(hybrid_cache), FeatureStore(native_cache)
    native_utts = {u["id"]: u for u in ns.utts[1.0]}
    pairs = [(u, native_utts[u["id"]]) for u in hs.utts[1.0] if u["id"] in native_utts]
    pairs = pairs[:: max(1, len(pairs) // utterances)][:utterances]
    if not pairs:
        raise SystemExit(f"--align {hybrid_cache} {native_cache}: no utterance is in both caches")
    captured = []
    hook = model.encoder.proj.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    xs, ys = [], []
    try:
        for hu, nu in pairs:
            hf, nf = torch.from_numpy(hs.features(hu))[None], torch.from_numpy(ns.features(nu))[None]
            captured.clear()
            model.encode(hf, torch.tensor([hf.shape[1]]))
            target, _ = native.encode(nf, torch.tensor([nf.shape[1]]))
            n = min(captured[0].shape[1], target.shape[1])   # the two front ends differ by a frame at most
            xs.append(captured[0][0, :n])
            ys.append(target[0, :n])
    finally:
        hook.remove()
    x = torch.cat(xs).double()
    y = torch.cat(ys).double()
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=torch.double)], 1)
    w = torch.linalg.solve(xa.T @ xa + ridge * len(x) * torch.eye(xa.shape[1], dtype=torch.double), xa.T @ y)
    model.encoder.proj.weight.copy_(w[:-1].T.float())
    model.encoder.proj.bias.copy_(w[-1].float())
    return float(((xa @ w - y) ** 2).mean() / y.var(0).mean())


def init_record(model_dir, teacher_dir, layers: int) -> dict:
    """The `init` of the run's checkpoints, for the exported model's card: the native model
    whose CTC head and speller it starts from (the hash of its weights, its card's
    checkpoint line and synthetic speech, which the speller learned from), and the teacher."""
    model_dir = Path(model_dir)
    card = model_dir / "MODEL_CARD.md"
    lines = card.read_text(encoding="utf-8").splitlines() if card.exists() else []
    seen = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("- checkpoint:")), "")
    return {"model": f"{model_dir} (CTC head, decoder) + {teacher_dir} (encoder, {layers} layers)",
            "sha256": hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest(),
            "its_checkpoint": seen, "its_synthetic_speech": card_synthetic_speech(lines)}


def init(a) -> Path:
    out = Path(a.out)
    if (out / "last.pt").exists():
        raise SystemExit(f"{out}/last.pt exists: train it with lasr_train.train --resume --out {out}")
    torch.manual_seed(a.seed)
    teacher = Teacher(a.teacher)
    model_cfg = yaml.safe_load((Path(a.model) / "config.yaml").read_text(encoding="utf-8"))
    if "decoder" not in model_cfg or model_cfg.get("encoder", {}).get("type", "conv") != "conv":
        raise SystemExit(f"--model {a.model}: not a native lasr model with a conv encoder (docs/model-format.md)")
    layers = a.layers or teacher.dims.n_audio_layer
    cfg = hybrid_config(load_config(a.config), model_cfg, teacher, layers, a.encoder_lr_scale, a.conv_blocks)
    tok = Tokenizer.load(a.model)
    margs = ModelArgs.from_config(cfg, tok.size)
    model = LasrModel(margs)
    native = LasrModel(ModelArgs.from_config(model_cfg, tok.size))
    load_init_model(native, a.model, tok)
    state = model.state_dict()
    state.update({k: v.clone() for k, v in native.state_dict().items() if k.startswith(("decoder.", "ctc."))})
    state.update(whisper_layers_weights(teacher, layers, margs.whisper_ctx))
    # (log_e(mel) - mean) / std = (log10(mel) + 4) / 4, the teacher's own scale
    ln10 = math.log(10.0)
    state["normalizer.mean"] = torch.full((margs.n_mels,), -4 * ln10)
    state["normalizer.std"] = torch.full((margs.n_mels,), 4 * ln10)
    model.load_state_dict(state)
    model.eval()
    native.eval()
    if a.align:
        t0 = time.time()
        residual = fit_projection(model, native, a.align[0], a.align[1], a.align_utterances)
        print(f"projection fitted on {a.align_utterances} utterances in {time.time() - t0:.0f} s: "
              f"residual {residual:.3f} of the native states' variance")
    model.train()
    groups = optimizer_groups(model, a.encoder_lr_scale)
    opt = torch.optim.Adam(groups, lr=cfg["training"]["lr"], betas=(0.9, 0.98), eps=1e-9)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "last.pt", model_args=margs.to_dict(), config=cfg, model=model.state_dict(),
                    optimizer=opt.state_dict(), step=0, epoch=0, batch_pos=0, best=None, audio_seconds=0.0,
                    rng=rng_state(), tokens=tok.pieces,
                    init=init_record(a.model, a.teacher, layers),
                    distill_heads=None, teacher=None, distill_optimizer=None)
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}/last.pt: {n} parameters, {layers} of {teacher.directory.name}'s layers at 40 ms, "
          f"encoder_lr_scale {a.encoder_lr_scale:g}; train it with lasr_train.train --resume --out {out} "
          f"on feature caches of this config's features (lasr_train.data --config {out}/config.yaml)")
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="a student encoder made of a Whisper encoder's layers")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init", help="write the first checkpoint of a run (then lasr_train.train --resume)")
    p.add_argument("--teacher", required=True, help="a converted Whisper model directory")
    p.add_argument("--model", required=True, help="a native model directory: its vocabulary, CTC head and decoder")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="where the training block comes from")
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=0, help="the teacher's first N layers (default: all)")
    p.add_argument("--encoder-lr-scale", type=float, default=0.0,
                   help="the teacher's layers' share of the learning rate; 0 freezes them")
    p.add_argument("--conv-blocks", type=int, default=0,
                   help="conv blocks of the native model's kind after the projection, fresh")
    p.add_argument("--align", nargs=2, metavar=("HYBRID_CACHE", "NATIVE_CACHE"),
                   help="fit the projection to the native encoder's output on these two caches of the same audio")
    p.add_argument("--align-utterances", type=int, default=300)
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    init(a)


if __name__ == "__main__":
    main()
