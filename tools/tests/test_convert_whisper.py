"""Conversion round trips: one tiny random-weight Whisper written in the three
published layouts must convert to the same lasr model, tensor for tensor."""
from __future__ import annotations

import json
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import convert_whisper as cw  # noqa: E402

DIMS = {"n_mels": 80, "n_audio_ctx": 12, "n_audio_state": 16, "n_audio_head": 2, "n_audio_layer": 2,
        "n_vocab": 51864, "n_text_ctx": 10, "n_text_state": 8, "n_text_head": 2, "n_text_layer": 2}


def random_state(seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in cw.expected_shapes(DIMS).items()}


def tokens() -> list[str]:
    """50256 distinct byte-level pieces (GPT-2's count), then Whisper's English-only specials and timestamps."""
    spell = cw.bytes_to_unicode()
    base = [spell[b] for b in range(256)] + [f"Ġw{i}" for i in range(50256 - 256)]
    return base + cw.whisper_specials(DIMS["n_vocab"])


def tokenizer_json(path: Path, toks: list[str]) -> None:
    specials_end = toks.index("<|notimestamps|>") + 1
    path.write_text(json.dumps({
        "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(toks[:50257])}, "merges": ["Ġ w", "Ġw 1"]},
        "added_tokens": [{"id": i, "content": toks[i], "special": True} for i in range(50256, specials_end)],
    }))


def write_openai(path: Path, state) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"dims": DIMS, "model_state_dict": {k: torch.from_numpy(v.copy()) for k, v in state.items()}}, path)


def write_huggingface(folder: Path, state, toks) -> None:
    folder.mkdir()
    inverse = {"attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
               "attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm", "cross_attn.query": "encoder_attn.q_proj",
               "cross_attn.key": "encoder_attn.k_proj", "cross_attn.value": "encoder_attn.v_proj",
               "cross_attn.out": "encoder_attn.out_proj", "cross_attn_ln": "encoder_attn_layer_norm",
               "mlp.0": "fc1", "mlp.2": "fc2", "mlp_ln": "final_layer_norm"}
    simple = {"encoder.positional_embedding": "encoder.embed_positions.weight",
              "encoder.ln_post.weight": "encoder.layer_norm.weight", "encoder.ln_post.bias": "encoder.layer_norm.bias",
              "decoder.token_embedding.weight": "decoder.embed_tokens.weight",
              "decoder.positional_embedding": "decoder.embed_positions.weight",
              "decoder.ln.weight": "decoder.layer_norm.weight", "decoder.ln.bias": "decoder.layer_norm.bias"}
    hf = {}
    for k, v in state.items():
        parts = k.split(".")
        if parts[1] == "blocks":
            hf[f"model.{parts[0]}.layers.{parts[2]}.{inverse['.'.join(parts[3:-1])]}.{parts[-1]}"] = v
        else:
            hf["model." + simple.get(k, k)] = v
    hf["proj_out.weight"] = state["decoder.token_embedding.weight"]
    cw.write_safetensors(folder / "model.safetensors", hf, {"format": "pt"})
    (folder / "config.json").write_text(json.dumps({"model_type": "whisper", "encoder_attention_heads": 2,
                                                    "decoder_attention_heads": 2}))
    (folder / "generation_config.json").write_text(json.dumps({"alignment_heads": [[1, 0], [1, 1]],
                                                               "suppress_tokens": [1, 2]}))
    tokenizer_json(folder / "tokenizer.json", toks)


def write_ctranslate2(folder: Path, state, toks) -> None:
    folder.mkdir()
    ct = {"encoder/num_heads": np.int16(2), "decoder/num_heads": np.int16(2)}

    def ln(src, dst):
        ct[dst + "/gamma"], ct[dst + "/beta"] = state[src + ".weight"], state[src + ".bias"]

    def lin(src, dst):
        ct[dst + "/weight"], ct[dst + "/bias"] = state[src + ".weight"], state[src + ".bias"]

    def fused(srcs, dst):
        ct[dst + "/weight"] = np.concatenate([state[s + ".weight"] for s in srcs])
        ct[dst + "/bias"] = np.concatenate([state.get(s + ".bias", np.zeros(state[s + ".weight"].shape[0], np.float32))
                                            for s in srcs])

    for side, n in (("encoder", DIMS["n_audio_layer"]), ("decoder", DIMS["n_text_layer"])):
        for i in range(n):
            s, d = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            ln(f"{s}.attn_ln", f"{d}/self_attention/layer_norm")
            fused([f"{s}.attn.query", f"{s}.attn.key", f"{s}.attn.value"], f"{d}/self_attention/linear_0")
            lin(f"{s}.attn.out", f"{d}/self_attention/linear_1")
            if side == "decoder":
                ln(f"{s}.cross_attn_ln", f"{d}/attention/layer_norm")
                lin(f"{s}.cross_attn.query", f"{d}/attention/linear_0")
                fused([f"{s}.cross_attn.key", f"{s}.cross_attn.value"], f"{d}/attention/linear_1")
                lin(f"{s}.cross_attn.out", f"{d}/attention/linear_2")
            ln(f"{s}.mlp_ln", f"{d}/ffn/layer_norm")
            lin(f"{s}.mlp.0", f"{d}/ffn/linear_0")
            lin(f"{s}.mlp.2", f"{d}/ffn/linear_1")
    lin("encoder.conv1", "encoder/conv1")
    lin("encoder.conv2", "encoder/conv2")
    ct["encoder/position_encodings/encodings"] = state["encoder.positional_embedding"]
    ln("encoder.ln_post", "encoder/layer_norm")
    ct["decoder/embeddings/weight"] = state["decoder.token_embedding.weight"]
    ct["decoder/position_encodings/encodings"] = state["decoder.positional_embedding"]
    ln("decoder.ln", "decoder/layer_norm")
    codes = {np.dtype(np.float32): 0, np.dtype(np.int16): 2}

    def string(s):
        b = s.encode()
        return struct.pack("<H", len(b) + 1) + b + b"\0"

    out = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<II", 3, len(ct))
    for name, v in sorted(ct.items()):
        v = np.asarray(v)
        out += string(name) + struct.pack("<B", v.ndim) + b"".join(struct.pack("<I", d) for d in v.shape)
        out += struct.pack("<BI", codes[v.dtype], v.nbytes) + v.tobytes()
    out += struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")
    (folder / "model.bin").write_bytes(out)
    (folder / "config.json").write_text(json.dumps({"alignment_heads": [[1, 0], [1, 1]], "suppress_ids": [1, 2]}))
    tokenizer_json(folder / "tokenizer.json", toks)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whisper")
    state, toks = random_state(), tokens()
    write_openai(tmp / "tiny.pt", state)
    tiktoken = tmp / "gpt2.tiktoken"
    import base64
    inverse = {c: b for b, c in cw.bytes_to_unicode().items()}
    tiktoken.write_text("".join(f"{base64.b64encode(bytes(inverse[c] for c in t)).decode()} {i}\n"
                                for i, t in enumerate(toks[:256]))
                        + "".join(f"{base64.b64encode(b' w' + str(i).encode()).decode()} {256 + i}\n"
                                  for i in range(50256 - 256)))
    write_huggingface(tmp / "hf", state, toks)
    write_ctranslate2(tmp / "ct2", state, toks)
    out = {}
    for name, src, kw in (("openai", tmp / "tiny.pt", {"tokenizer": tiktoken}), ("huggingface", tmp / "hf", {}),
                          ("ctranslate2", tmp / "ct2", {})):
        info = cw.convert(src, tmp / f"out-{name}", dtype="float32", **kw)
        out[name] = (info, cw.read_safetensors(tmp / f"out-{name}" / "model.safetensors"), tmp / f"out-{name}")
    return state, toks, out


@pytest.mark.parametrize("layout", ["openai", "huggingface", "ctranslate2"])
def test_every_layout_round_trips_the_weights(converted, layout):
    state, _, out = converted
    info, tensors, _ = out[layout]
    assert info["layout"] == layout and info["dims"] == DIMS
    assert set(tensors) == set(state)
    for k in state:
        np.testing.assert_array_equal(tensors[k], state[k], err_msg=k)


@pytest.mark.parametrize("layout", ["openai", "huggingface", "ctranslate2"])
def test_tokens_and_specials(converted, layout):
    _, toks, out = converted
    _, _, folder = out[layout]
    written = (folder / "tokens.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert written == toks
    assert written[50257] == "<|startoftranscript|>" and written[-1] == "<|30.00|>"
    text = (folder / "config.yaml").read_text()
    assert "timestamp_begin: 50363" in text and "no_timestamps: 50362" in text and "english_only: true" in text
    # no word-time offset unless one is given (lasr models calibrate measures it)
    assert "timestamps:" in text and "  attention_lag: 0.000" in text
    if layout != "openai":
        assert "alignment_heads: [[1, 0], [1, 1]]" in text
    else:
        # no list in an OpenAI checkpoint: every head of the upper half of the decoder
        assert "alignment_heads: [[1, 0], [1, 1]]" in text and "default" in text


def test_fp16_output_and_shape_errors(tmp_path):
    state = random_state(1)
    write_openai(tmp_path / "a.pt", state)
    toks = tokens()
    tokenizer_json(tmp_path / "tokenizer.json", toks)
    cw.convert(tmp_path / "a.pt", tmp_path / "out", tokenizer=tmp_path / "tokenizer.json")
    t = cw.read_safetensors(tmp_path / "out" / "model.safetensors")
    assert t["encoder.conv1.weight"].dtype == np.float16
    np.testing.assert_allclose(t["encoder.conv1.weight"], state["encoder.conv1.weight"], rtol=1e-3, atol=1e-3)
    state["decoder.ln.weight"] = state["decoder.ln.weight"][:4]
    write_openai(tmp_path / "b.pt", state)
    with pytest.raises(cw.ConversionError, match=r"decoder.ln.weight has shape \(4,\), expected \(8,\)"):
        cw.convert(tmp_path / "b.pt", tmp_path / "out2", tokenizer=tmp_path / "tokenizer.json")


def test_attention_lag(tmp_path):
    write_ctranslate2(tmp_path / "ct2", random_state(2), tokens())
    assert cw.main([str(tmp_path / "ct2"), str(tmp_path / "out"), "--attention-lag", "-0.0314"]) == 0
    assert "\n  attention_lag: -0.031   #" in (tmp_path / "out" / "config.yaml").read_text()
    with pytest.raises(cw.ConversionError, match=r"--attention-lag 1.5: must lie in \[-1, 1\]"):
        cw.convert(tmp_path / "ct2", tmp_path / "out2", attention_lag=1.5)


def test_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"dims": Evil()}))
    with pytest.raises(cw.ConversionError, match="builtins.print"):
        cw.convert(path, tmp_path / "out", tokenizer=tmp_path / "none.json")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"hello")
    assert cw.main([str(tmp_path / "x.pt"), str(tmp_path / "o")]) == 1
    with pytest.raises(cw.ConversionError, match="not a Whisper checkpoint"):
        cw.convert(tmp_path, tmp_path / "o")
