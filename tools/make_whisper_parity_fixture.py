"""Writes Tests/LasrTests/Fixtures/whisper-parity.safetensors: a tiny random-weight
Whisper (OpenAI's tensor names, float32), an input log-mel, and what OpenAI's own
`whisper.model.Whisper` computes from them: the encoder output, the decoder's
logits for a token sequence, and the cross-attention weights of every head.
WhisperParityTests requires the Swift engine to reproduce them.

openai-whisper is not a dependency of lasr; install it beside the venv once:

    .venv/bin/pip install --target /tmp/whisper-ref --no-deps openai-whisper tiktoken tqdm \\
        more-itertools numba llvmlite regex
    PYTHONPATH=/tmp/whisper-ref .venv/bin/python tools/make_whisper_parity_fixture.py
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

FIXTURES = Path(__file__).resolve().parents[1] / "Tests/LasrTests/Fixtures"
OUT = FIXTURES / "whisper-parity.safetensors"
DIMS = {"n_mels": 80, "n_audio_ctx": 8, "n_audio_state": 16, "n_audio_head": 2, "n_audio_layer": 2,
        "n_vocab": 64, "n_text_ctx": 12, "n_text_state": 16, "n_text_head": 2, "n_text_layer": 2}
TOKENS = [50, 3, 7, 9, 11, 60]


def main() -> None:
    from whisper.model import ModelDimensions, Whisper, MultiHeadAttention

    torch.manual_seed(7)
    model = Whisper(ModelDimensions(**DIMS)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():  # random, not the init: LayerNorms and biases matter too
            p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.5) + (1.0 if name.endswith("ln.weight") else 0))
    mel = torch.randn(1, DIMS["n_mels"], 2 * DIMS["n_audio_ctx"]).clamp(-1.5, 1.5)
    tokens = torch.tensor([TOKENS])
    weights = {}
    MultiHeadAttention.use_sdpa = False  # so each attention returns its scores
    hooks = [block.cross_attn.register_forward_hook(
        lambda _m, _i, out, layer=layer: weights.__setitem__(layer, out[-1][0].float().softmax(-1)))
        for layer, block in enumerate(model.decoder.blocks)]
    with torch.no_grad():
        audio = model.encoder(mel)
        logits = model.decoder(tokens, audio)
    for h in hooks:
        h.remove()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["test.mel"] = mel[0].T.contiguous()                              # (frames, n_mels)
    tensors["test.encoder_output"] = audio[0].contiguous()                   # (n_audio_ctx, state)
    tensors["test.logits"] = logits[0].contiguous()                          # (tokens, n_vocab)
    tensors["test.cross_attention"] = torch.stack([weights[l] for l in range(DIMS["n_text_layer"])]).contiguous()
    save_file(tensors, str(OUT), metadata={"dims": json.dumps(DIMS), "tokens": json.dumps(TOKENS),
                                           "source": "openai-whisper via tools/make_whisper_parity_fixture.py"})
    print(f"wrote {OUT}")
    tiny_model_directory()


def tiny_model_directory() -> None:
    """Tests/LasrTests/Fixtures/tiny-whisper/: a whole converted model (random
    weights, 50 byte-level tokens and Whisper's English-only specials), made the
    way a user makes one: an OpenAI-layout checkpoint through tools/convert_whisper.py."""
    import base64
    import sys
    import tempfile

    from whisper.model import ModelDimensions, Whisper

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import convert_whisper

    pieces = [bytes([b]) for b in b" abcdefghijklmnopqrstuvwxyz.,'"] + [b" " + w for w in
              (b"the", b"a", b"to", b"of", b"and", b"is", b"it", b"in", b"on", b"at", b"we", b"he", b"she",
               b"you", b"for", b"be", b"was", b"are", b"not", b"this")]
    dims = dict(DIMS, n_vocab=len(pieces) + len(convert_whisper.whisper_specials(51864)), n_text_ctx=64,
                n_audio_ctx=1500)
    torch.manual_seed(11)
    model = Whisper(ModelDimensions(**dims)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.5) + (1.0 if name.endswith("ln.weight") else 0))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "tiny.pt"
        torch.save({"dims": dims, "model_state_dict": model.state_dict()}, ckpt)
        tiktoken = Path(tmp) / "tiny.tiktoken"
        tiktoken.write_text("".join(f"{base64.b64encode(p).decode()} {i}\n" for i, p in enumerate(pieces)))
        out = FIXTURES / "tiny-whisper"
        convert_whisper.convert(ckpt, out, name="tiny-whisper", tokenizer=tiktoken, dtype="float16")
    config = (out / "config.yaml").read_text().splitlines()
    config = [l if not l.startswith("source:") else
              'source: "tiny.pt (random weights from tools/make_whisper_parity_fixture.py)"   # openai layout'
              for l in config]
    (out / "config.yaml").write_text("\n".join(config) + "\n")
    (out / "MODEL_CARD.md").write_text("# tiny-whisper\n\nRandom weights in Whisper's shapes, for tests only "
                                       "(tools/make_whisper_parity_fixture.py). It transcribes nothing.\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
