#!/usr/bin/env python3
"""Converts a Whisper checkpoint into lasr's model format (docs/model-format.md, "Whisper").

Three published layouts are read, with numpy only (no PyTorch):

  * an OpenAI checkpoint, `tiny.en.pt` and friends: a PyTorch zip archive holding
    `{"dims": ..., "model_state_dict": ...}`. It carries no tokenizer: pass
    `--tokenizer` (a Hugging Face `tokenizer.json`, or the `gpt2.tiktoken` /
    `multilingual.tiktoken` file shipped with openai-whisper);
  * a Hugging Face `openai/whisper-*` folder: `config.json`, `model.safetensors`
    (or `pytorch_model.bin`), `tokenizer.json` (or `vocab.json` + `merges.txt`),
    and `generation_config.json` for the alignment heads;
  * a CTranslate2 Whisper folder (faster-whisper's): `model.bin`, `config.json`,
    `vocabulary.txt` / `vocabulary.json` or `tokenizer.json`; its query/key/value
    projections are fused and are split here.

    python3 tools/convert_whisper.py SOURCE OUT_DIR [--tokenizer FILE] [--name NAME]
        [--dtype float16|float32] [--alignment-heads 1,0;2,0]

The output directory holds `config.yaml`, `model.safetensors` (OpenAI's tensor
names, Q/K/V separate), `tokens.txt` (one token per line in GPT-2's byte-to-
unicode spelling, then the special tokens), `merges.txt` when the source has
merges, and `MODEL_CARD.md`.
"""
from __future__ import annotations

import argparse
import base64
from dataclasses import asdict
import json
import pickle
import re
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from lasr_train.features import whisper_config  # noqa: E402  (numpy only: the one definition of Whisper's front end)

FORMAT_VERSION = 1

# ISO 639-1 codes in the order of Whisper's language tokens (<|en|> is the first
# after <|startoftranscript|>); from openai/whisper's tokenizer.LANGUAGES.
LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt "
    "la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af "
    "oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue"
).split()


class ConversionError(Exception):
    """A checkpoint this converter cannot read; the message names the file and the reason."""


# --------------------------------------------------------------------------- GPT-2 byte spelling

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (printable Latin-1 bytes map to themselves)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# --------------------------------------------------------------------------- readers

def _array(raw: bytes, dtype) -> np.ndarray:
    """A flat array of raw little-endian values; bfloat16 widened to float32 (its upper half)."""
    if dtype == "bfloat16":
        return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=dtype)


def _restricted_unpickler(data: bytes, storage_loader):
    """Unpickles a PyTorch zip checkpoint's data.pkl into numpy arrays, allowing only tensor rebuilding."""
    dtypes = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
              "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
              "BoolStorage": np.bool_}

    def rebuild_tensor(storage, offset, size, stride, *_):
        if not size:
            return storage[offset].copy()
        itemsize = storage.itemsize
        return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                               strides=tuple(s * itemsize for s in stride)).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor
            if module == "torch" and name in dtypes:
                return name
            if module == "collections" and name == "OrderedDict":
                import collections
                return collections.OrderedDict
            raise ConversionError(f"checkpoint needs {module}.{name}, which a weights file should not")

        def persistent_load(self, pid):
            kind, storage_type, key, _location, _numel = pid
            if kind != "storage":
                raise ConversionError(f"unknown persistent id {kind!r}")
            return _array(storage_loader(key), dtypes[storage_type])

    import io
    return Unpickler(io.BytesIO(data)).load()


def read_torch_zip(path: Path):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ConversionError(f"{path}: not a PyTorch zip checkpoint (legacy pickled .pt files are not supported)")
    pkl = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if not pkl:
        raise ConversionError(f"{path}: no data.pkl inside the archive")
    prefix = pkl[0][: -len("data.pkl")]
    return _restricted_unpickler(archive.read(pkl[0]), lambda key: archive.read(f"{prefix}data/{key}"))


def read_ct2_model_bin(path: Path) -> dict[str, np.ndarray]:
    """CTranslate2's model.bin (binary version 6): named tensors, then aliases."""
    data = path.read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string():
        nonlocal pos
        n = take("H")
        s = data[pos:pos + n - 1].decode("utf-8")
        pos += n
        return s

    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
    version = take("I")
    if version < 5:
        raise ConversionError(f"{path}: CTranslate2 binary version {version} is too old (need 5 or 6)")
    spec = string()
    if spec != "WhisperSpec":
        raise ConversionError(f"{path}: a CTranslate2 {spec}, not a Whisper model")
    take("I")  # spec revision
    tensors = {}
    for _ in range(take("I")):
        name = string()
        rank = take("B")
        shape = [take("I") for _ in range(rank)]
        dtype = dtypes.get(take("B"))
        nbytes = take("I")
        raw = data[pos:pos + nbytes]
        pos += nbytes
        if dtype is None:
            raise ConversionError(f"{path}: tensor {name} has an unknown data type")
        arr = _array(raw, dtype)
        tensors[name] = arr.reshape(shape) if shape else arr[0]
    for _ in range(take("I")):
        alias, target = string(), string()
        tensors[alias] = tensors[target]
    return tensors


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
              "BF16": "bfloat16"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        dtype = dtypes.get(info["dtype"])
        if dtype is None:
            raise ConversionError(f"{path}: tensor {name} has dtype {info['dtype']}, which is not supported")
        out[name] = _array(raw, dtype).reshape(info["shape"])
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    names = sorted(tensors)
    header, offset = {"__metadata__": metadata}, 0
    codes = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}
    for name in names:
        t = np.ascontiguousarray(tensors[name])
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name]).tobytes())


# --------------------------------------------------------------------------- layouts -> OpenAI names

def dims_from_state(state: dict[str, np.ndarray], n_audio_head: int, n_text_head: int) -> dict[str, int]:
    n_audio_layer = len({k.split(".")[2] for k in state if k.startswith("encoder.blocks.")})
    n_text_layer = len({k.split(".")[2] for k in state if k.startswith("decoder.blocks.")})
    return {
        "n_mels": int(state["encoder.conv1.weight"].shape[1]),
        "n_audio_ctx": int(state["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(state["encoder.conv1.weight"].shape[0]),
        "n_audio_head": int(n_audio_head),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(state["decoder.token_embedding.weight"].shape[0]),
        "n_text_ctx": int(state["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(state["decoder.token_embedding.weight"].shape[1]),
        "n_text_head": int(n_text_head),
        "n_text_layer": n_text_layer,
    }


def from_openai(path: Path):
    ckpt = read_torch_zip(path)
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ConversionError(f"{path}: expected an OpenAI Whisper checkpoint with 'dims' and 'model_state_dict'")
    state = {k: np.asarray(v) for k, v in ckpt["model_state_dict"].items()}
    if "encoder.positional_embedding" not in state:
        state["encoder.positional_embedding"] = sinusoids(ckpt["dims"]["n_audio_ctx"], ckpt["dims"]["n_audio_state"])
    return {k: int(v) for k, v in ckpt["dims"].items()}, state


def sinusoids(length: int, channels: int) -> np.ndarray:
    """Whisper's fixed encoder positions: sin then cos, timescales geometric from 1 to 10000."""
    inc = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def from_huggingface(folder: Path):
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("model_type") != "whisper":
        raise ConversionError(f"{folder / 'config.json'}: model_type {cfg.get('model_type')!r}, not 'whisper'")
    if (folder / "model.safetensors").exists():
        hf = read_safetensors(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").exists():
        hf = {k: np.asarray(v) for k, v in read_torch_zip(folder / "pytorch_model.bin").items()}
    else:
        raise ConversionError(f"{folder}: neither model.safetensors nor pytorch_model.bin")
    hf = {k.removeprefix("model."): v for k, v in hf.items()}
    state = {}
    rename = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
              "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
              "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
              "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
              "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln"}
    for name, t in hf.items():
        m = re.match(r"(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)$", name)
        if m:
            side, i, part, kind = m.groups()
            if part not in rename:
                raise ConversionError(f"{folder}: unexpected tensor {name}")
            state[f"{side}.blocks.{i}.{rename[part]}.{kind}"] = t
            continue
        simple = {"encoder.conv1.weight": None, "encoder.conv1.bias": None, "encoder.conv2.weight": None,
                  "encoder.conv2.bias": None, "encoder.embed_positions.weight": "encoder.positional_embedding",
                  "encoder.layer_norm.weight": "encoder.ln_post.weight", "encoder.layer_norm.bias": "encoder.ln_post.bias",
                  "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
                  "decoder.embed_positions.weight": "decoder.positional_embedding",
                  "decoder.layer_norm.weight": "decoder.ln.weight", "decoder.layer_norm.bias": "decoder.ln.bias"}
        if name in simple:
            state[simple[name] or name] = t
        elif name == "proj_out.weight":
            continue  # tied to the token embedding
        else:
            raise ConversionError(f"{folder}: unexpected tensor {name}")
    dims = dims_from_state(state, cfg["encoder_attention_heads"], cfg["decoder_attention_heads"])
    return dims, state


def from_ctranslate2(folder: Path):
    ct = read_ct2_model_bin(folder / "model.bin")
    state = {}

    def f(name):
        if name + "_scale" in ct:  # int8 weights: per-row scale, w = q / scale
            return ct[name].astype(np.float32) / ct[name + "_scale"].astype(np.float32)[:, None]
        return ct[name]

    def ln(src, dst):
        state[dst + ".weight"], state[dst + ".bias"] = f(src + "/gamma"), f(src + "/beta")

    def lin(src, dst, bias=True):
        state[dst + ".weight"] = f(src + "/weight")
        if bias:
            state[dst + ".bias"] = f(src + "/bias")

    def split(src, dsts):
        w, b = f(src + "/weight"), f(src + "/bias")
        n = w.shape[0] // len(dsts)
        for j, dst in enumerate(dsts):
            state[dst + ".weight"] = w[j * n:(j + 1) * n]
            if dst.endswith("key"):
                if np.any(b[j * n:(j + 1) * n] != 0):
                    raise ConversionError(f"{folder / 'model.bin'}: {src}/bias is nonzero on the key part; "
                                          "Whisper's key projection has no bias")
            else:
                state[dst + ".bias"] = b[j * n:(j + 1) * n]

    for side in ("encoder", "decoder"):
        layers = sorted({int(m.group(1)) for k in ct for m in [re.match(rf"{side}/layer_(\d+)/", k)] if m})
        for i in layers:
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            ln(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
            split(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"])
            lin(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
            if side == "decoder":
                ln(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
                lin(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
                split(f"{src}/attention/linear_1", [f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"])
                lin(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
            ln(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
            lin(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
            lin(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    for conv in ("conv1", "conv2"):
        lin(f"encoder/{conv}", f"encoder.{conv}")
    state["encoder.positional_embedding"] = f("encoder/position_encodings/encodings")
    ln("encoder/layer_norm", "encoder.ln_post")
    state["decoder.token_embedding.weight"] = f("decoder/embeddings/weight")
    state["decoder.positional_embedding"] = f("decoder/position_encodings/encodings")
    ln("decoder/layer_norm", "decoder.ln")
    dims = dims_from_state(state, int(ct["encoder/num_heads"]), int(ct["decoder/num_heads"]))
    return dims, state


# --------------------------------------------------------------------------- tokenizer

def read_tokens(source: Path, layout: str, tokenizer: Path | None, n_vocab: int):
    """Returns (tokens by id in GPT-2 byte spelling, merges or None)."""
    candidates = [tokenizer] if tokenizer else [source / "tokenizer.json", source / "vocab.json",
                                                 source / "vocabulary.json", source / "vocabulary.txt"]
    path = next((p for p in candidates if p is not None and p.exists()), None)
    if path is None:
        hint = " (pass --tokenizer: an OpenAI checkpoint has none)" if layout == "openai" else ""
        raise ConversionError(f"{source}: no tokenizer found{hint}")
    merges = None
    if path.suffix == ".tiktoken":
        ranks = {}
        for line in path.read_text().splitlines():
            if line.strip():
                b64, rank = line.split()
                ranks[int(rank)] = base64.b64decode(b64)
        spell = bytes_to_unicode()
        base = ["".join(spell[b] for b in ranks[i]) for i in range(len(ranks))]
        tokens = base + whisper_specials(n_vocab)
        if len(tokens) != n_vocab:
            raise ConversionError(f"{path}: {len(base)} pieces and Whisper's special tokens make {len(tokens)} "
                                  f"tokens, but the checkpoint has {n_vocab}")
        return tokens, None
    if path.name == "tokenizer.json":
        tj = json.loads(path.read_text())
        vocab = dict(tj["model"]["vocab"])
        for added in tj.get("added_tokens", []):
            vocab[added["content"]] = added["id"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"].get("merges", [])]
    elif path.suffix == ".json":
        vocab = json.loads(path.read_text())
        if isinstance(vocab, list):
            vocab = {t: i for i, t in enumerate(vocab)}
        added = path.parent / "added_tokens.json"
        if added.exists():
            vocab.update(json.loads(added.read_text()))
        mp = path.parent / "merges.txt"
        if mp.exists():
            merges = [l for l in mp.read_text().splitlines() if l and not l.startswith("#version")]
    else:
        vocab = {t: i for i, t in enumerate(path.read_text(encoding="utf-8").rstrip("\n").split("\n"))}
    tokens = [None] * n_vocab
    for t, i in vocab.items():
        if i < n_vocab:
            tokens[i] = t
    # Tokenizer files usually stop before the timestamp tokens, which follow <|notimestamps|>.
    if "<|notimestamps|>" in vocab and tokens[-1] is None:
        first = vocab["<|notimestamps|>"] + 1
        for j, t in enumerate(timestamp_tokens()[: n_vocab - first]):
            tokens[first + j] = tokens[first + j] or t
    if any(t is None for t in tokens):
        gap = tokens.index(None)
        raise ConversionError(f"{path}: the vocabulary leaves id {gap} unassigned (the model has {n_vocab} tokens)")
    return tokens, merges


def whisper_specials(n_vocab: int) -> list[str]:
    """Whisper's special tokens in id order, as openai-whisper names them (after the byte-level pieces)."""
    n_lang = 100 if n_vocab >= 51866 else 99
    return (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGUAGES[:n_lang]]
            + ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
               "<|notimestamps|>"] + timestamp_tokens())


def timestamp_tokens() -> list[str]:
    """<|0.00|> ... <|30.00|>: 1501 tokens, 20 ms apart."""
    return [f"<|{i * 0.02:.2f}|>" for i in range(1501)]


def special_ids(tokens: list[str]) -> dict:
    index = {t: i for i, t in enumerate(tokens)}

    def need(t):
        if t not in index:
            raise ConversionError(f"the vocabulary has no {t}")
        return index[t]

    languages = [t[2:-2] for t in tokens if re.fullmatch(r"<\|[a-z]{2,3}\|>", t) and t[2:-2] in LANGUAGES]
    no_speech = index.get("<|nospeech|>", index.get("<|nocaptions|>"))
    return {
        "end_of_text": need("<|endoftext|>"),
        "start_of_transcript": need("<|startoftranscript|>"),
        "translate": need("<|translate|>"),
        "transcribe": need("<|transcribe|>"),
        "start_of_lm": need("<|startoflm|>"),
        "start_of_previous": need("<|startofprev|>"),
        "no_speech": no_speech,
        "no_timestamps": need("<|notimestamps|>"),
        "timestamp_begin": need("<|0.00|>"),
        "languages": languages,
        "first_language": need(f"<|{languages[0]}|>") if languages else None,
    }


# --------------------------------------------------------------------------- alignment heads

def parse_heads(text: str) -> list[list[int]]:
    return [[int(x) for x in pair.split(",")] for pair in text.split(";") if pair.strip()]


def read_alignment_heads(source: Path, layout: str, dims: dict, given: str | None) -> tuple[list[list[int]], str]:
    if given:
        return parse_heads(given), "given on the command line"
    if layout == "ctranslate2":
        cfg = json.loads((source / "config.json").read_text()) if (source / "config.json").exists() else {}
        if cfg.get("alignment_heads"):
            return cfg["alignment_heads"], "CTranslate2 config.json"
    if layout == "huggingface" and (source / "generation_config.json").exists():
        heads = json.loads((source / "generation_config.json").read_text()).get("alignment_heads")
        if heads:
            return heads, "generation_config.json"
    # What openai-whisper itself falls back to when a model has no list: every head of the upper half.
    n, h = dims["n_text_layer"], dims["n_text_head"]
    return [[l, j] for l in range(n // 2, n) for j in range(h)], "default: all heads of the upper half of the decoder"


def suppress_tokens(source: Path, layout: str) -> list[int] | None:
    if layout == "ctranslate2" and (source / "config.json").exists():
        return json.loads((source / "config.json").read_text()).get("suppress_ids")
    if layout == "huggingface" and (source / "generation_config.json").exists():
        return json.loads((source / "generation_config.json").read_text()).get("suppress_tokens")
    return None


# --------------------------------------------------------------------------- main

EXPECTED_PER_BLOCK = {
    "encoder": ["attn_ln.weight", "attn_ln.bias", "attn.query.weight", "attn.query.bias", "attn.key.weight",
                "attn.value.weight", "attn.value.bias", "attn.out.weight", "attn.out.bias", "mlp_ln.weight",
                "mlp_ln.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"],
}
EXPECTED_PER_BLOCK["decoder"] = EXPECTED_PER_BLOCK["encoder"] + [
    "cross_attn_ln.weight", "cross_attn_ln.bias", "cross_attn.query.weight", "cross_attn.query.bias",
    "cross_attn.key.weight", "cross_attn.value.weight", "cross_attn.value.bias", "cross_attn.out.weight",
    "cross_attn.out.bias"]


def expected_shapes(d: dict) -> dict[str, tuple]:
    """Every tensor of lasr's Whisper format with its shape (docs/model-format.md, "Whisper")."""
    a, t, m = d["n_audio_state"], d["n_text_state"], d["n_mels"]
    shapes = {"encoder.conv1.weight": (a, m, 3), "encoder.conv1.bias": (a,), "encoder.conv2.weight": (a, a, 3),
              "encoder.conv2.bias": (a,), "encoder.positional_embedding": (d["n_audio_ctx"], a),
              "encoder.ln_post.weight": (a,), "encoder.ln_post.bias": (a,),
              "decoder.token_embedding.weight": (d["n_vocab"], t), "decoder.positional_embedding": (d["n_text_ctx"], t),
              "decoder.ln.weight": (t,), "decoder.ln.bias": (t,)}
    for side, n, w in (("encoder", d["n_audio_layer"], a), ("decoder", d["n_text_layer"], t)):
        for i in range(n):
            for part in EXPECTED_PER_BLOCK[side]:
                name = f"{side}.blocks.{i}.{part}"
                if part.startswith("mlp.0"):
                    shapes[name] = (4 * w, w) if part.endswith("weight") else (4 * w,)
                elif part.startswith("mlp.2"):
                    shapes[name] = (w, 4 * w) if part.endswith("weight") else (w,)
                else:
                    shapes[name] = (w, w) if part.endswith("weight") and "ln" not in part else (w,)
    return shapes


def detect_layout(source: Path) -> str:
    if source.is_file():
        return "openai"
    if (source / "model.bin").exists():
        return "ctranslate2"
    if (source / "config.json").exists():
        return "huggingface"
    raise ConversionError(f"{source}: not a Whisper checkpoint (expected a .pt file, a folder with model.bin, "
                          "or a folder with config.json)")


def convert(source: Path, out: Path, name: str | None = None, tokenizer: Path | None = None,
            dtype: str = "float16", alignment_heads: str | None = None, attention_lag: float = 0.0) -> dict:
    layout = detect_layout(source)
    dims, state = {"openai": from_openai, "huggingface": from_huggingface, "ctranslate2": from_ctranslate2}[layout](source)
    shapes = expected_shapes(dims)
    missing = sorted(set(shapes) - set(state))
    extra = sorted(set(state) - set(shapes))
    if missing or extra:
        raise ConversionError(f"{source}: tensors missing {missing[:5]} / unexpected {extra[:5]}")
    for k, shape in shapes.items():
        if tuple(state[k].shape) != shape:
            raise ConversionError(f"{source}: {k} has shape {tuple(state[k].shape)}, expected {shape}")
    tokens, merges = read_tokens(source, layout, tokenizer, dims["n_vocab"])
    specials = special_ids(tokens)
    heads, heads_from = read_alignment_heads(source, layout, dims, alignment_heads)
    for layer, head in heads:
        if not (0 <= layer < dims["n_text_layer"] and 0 <= head < dims["n_text_head"]):
            raise ConversionError(f"alignment head [{layer}, {head}] is outside the decoder "
                                  f"({dims['n_text_layer']} layers x {dims['n_text_head']} heads)")
    if not -1 <= attention_lag <= 1:
        raise ConversionError(f"--attention-lag {attention_lag}: must lie in [-1, 1] seconds")
    np_dtype = {"float16": np.float16, "float32": np.float32}[dtype]
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", {k: np.asarray(v, dtype=np_dtype) for k, v in state.items()},
                      {"format": "lasr-model", "format_version": str(FORMAT_VERSION), "architecture": "whisper",
                       "dtype": dtype})
    (out / "tokens.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    if merges:
        (out / "merges.txt").write_text("".join(m + "\n" for m in merges), encoding="utf-8")
    name = name or out.name
    english_only = not specials["languages"] or dims["n_vocab"] < 51865
    n_mels = dims["n_mels"]
    lines = [
        "# Converted by tools/convert_whisper.py; docs/model-format.md \"Whisper\" defines every field.",
        "format: lasr-model",
        f"format_version: {FORMAT_VERSION}",
        "architecture: whisper",
        f"name: {name}",
        f"source: {json.dumps(str(source))}   # {layout} layout",
        "features:            # docs/features.md \"Other front ends\"",
        *[f"  {k}: {json.dumps(v)}" for k, v in asdict(whisper_config(n_mels)).items()],
        "whisper:",
        *[f"  {k}: {v}" for k, v in dims.items()],
        "vocabulary:",
        "  type: byte-bpe",
        f"  size: {dims['n_vocab']}",
        "  tokens: tokens.txt",
        f"  merges: {'merges.txt' if merges else 'null'}",
        f"  english_only: {'true' if english_only else 'false'}",
        *[f"  {k}: {json.dumps(v)}" for k, v in specials.items()],
        f"  suppress_tokens: {json.dumps(suppress_tokens(source, layout))}",
        f"alignment_heads: {json.dumps(heads)}   # [decoder layer, head]; from {heads_from}",
        "decoding:",
        "  beam: 5",
        "  temperatures: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]",
        "  compression_ratio_threshold: 2.4",
        "  log_prob_threshold: -1.0",
        "  no_speech_threshold: 0.6",
        "  length_penalty: null",
        "timestamps:            # docs/model-format.md \"Whisper\"",
        f"  attention_lag: {attention_lag:.3f}   # seconds subtracted from every word time; "
        + ("lasr models calibrate measures it" if attention_lag == 0 else "measured for this checkpoint (lasr models calibrate)"),
    ]
    (out / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    params = sum(int(np.prod(v.shape)) for v in state.values())
    (out / "MODEL_CARD.md").write_text(
        f"# {name}\n\nOpenAI Whisper ({'English-only' if english_only else 'multilingual'}), converted by "
        f"`tools/convert_whisper.py` from the {layout} layout at `{source}`.\n\n"
        f"- Parameters: {params:,} ({dtype} on disk, float32 in the engine)\n"
        f"- Dimensions: {json.dumps(dims)}\n"
        f"- Alignment heads ({heads_from}): {json.dumps(heads)}\n\n"
        "Weights: OpenAI, MIT license (https://github.com/openai/whisper). Training data and measured error "
        "rates: the Whisper paper, Radford et al. 2022, \"Robust Speech Recognition via Large-Scale Weak "
        "Supervision\".\n", encoding="utf-8")
    return {"layout": layout, "dims": dims, "parameters": params, "alignment_heads": heads}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="OpenAI .pt file, Hugging Face folder, or CTranslate2 folder")
    p.add_argument("out", type=Path, help="output model directory")
    p.add_argument("--name", help="model name in config.yaml (default: the output folder's name)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer.json, vocab.json or *.tiktoken (needed for .pt)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--alignment-heads", help="'layer,head;layer,head' (overrides what the checkpoint lists)")
    p.add_argument("--attention-lag", type=float, default=0.0,
                   help="seconds the checkpoint's word times lag the speech (timestamps.attention_lag; "
                        "default 0: `lasr models calibrate` measures it)")
    a = p.parse_args(argv)
    try:
        info = convert(a.source, a.out, a.name, a.tokenizer, a.dtype, a.alignment_heads, a.attention_lag)
    except (ConversionError, OSError, KeyError, ValueError) as e:
        print(f"convert_whisper: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.out}: {info['layout']} layout, {info['parameters']:,} parameters, dims {info['dims']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
