"""The lasr model: conv encoder + CTC head + LSTM listen-attend-spell decoder.

docs/model-format.md writes out every equation and tensor name; the Swift
engine implements exactly what `LasrModel` computes in eval mode.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tokenizer import BLANK, SOS_EOS


@dataclass
class ModelArgs:
    n_mels: int = 80
    vocab_size: int = 256
    # encoder
    subsampling_channels: int = 32
    d_model: int = 256
    num_blocks: int = 12
    kernel_size: int = 15
    ff_mult: int = 2
    dropout: float = 0.1
    # encoder_type "whisper": Whisper's conv front end and pre-LayerNorm transformer
    # blocks (their weights taken from a converted checkpoint), run at the conv encoder's
    # 40 ms frame rate and projected to d_model for the CTC head and the decoder
    encoder_type: str = "conv"
    whisper_state: int = 384
    whisper_heads: int = 6
    whisper_layers: int = 4
    whisper_ff: int = 1536
    whisper_ctx: int = 750
    # conv blocks (ConvBlock, kernel_size, ff_mult) on the projected states, then a LayerNorm
    whisper_conv_blocks: int = 0
    # decoder
    embed_dim: int = 256
    hidden: int = 512
    attention_type: str = "location"
    attention_dim: int = 128
    location_filters: int = 32
    location_radius: int = 15
    # training only: dropout on the speller's token embeddings and on what feeds its
    # output layer (0: none, and no module, so runs without it draw as before)
    decoder_dropout: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict, vocab_size: int) -> "ModelArgs":
        e, d = cfg["encoder"], cfg["decoder"]
        att = d["attention"]
        kind = e.get("type", "conv")
        if kind not in ("conv", "whisper"):
            raise ValueError(f"encoder.type: {kind!r} is neither 'conv' nor 'whisper'")
        w = e.get("whisper", {})
        conv = {k: e[k] for k in ("subsampling_channels", "num_blocks", "kernel_size", "ff_mult")} \
            if kind == "conv" else {}
        return cls(n_mels=cfg["features"]["n_mels"], vocab_size=vocab_size, d_model=e["d_model"], **conv,
                   encoder_type=kind,
                   whisper_state=w.get("state", 384), whisper_heads=w.get("heads", 6),
                   whisper_layers=w.get("layers", 4), whisper_ff=w.get("ff", 1536), whisper_ctx=w.get("ctx", 750),
                   whisper_conv_blocks=w.get("conv_blocks", 0),
                   **({"kernel_size": e["kernel_size"], "ff_mult": e["ff_mult"]} if w.get("conv_blocks") else {}),
                   dropout=cfg.get("training", {}).get("dropout", 0.1),
                   embed_dim=d["embed_dim"], hidden=d["hidden"], attention_type=att["type"],
                   attention_dim=att["dim"], location_filters=att.get("filters", 32),
                   location_radius=att.get("radius", 15),
                   decoder_dropout=cfg.get("training", {}).get("decoder_dropout", 0.0))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def architecture(cls, args: dict) -> dict:
        """What fixes the weights' shapes and meaning: `args` (a checkpoint's `model_args`,
        perhaps written before a field existed) with the defaults filled in and the
        training-only dropouts left out, so checkpoints that differ only there combine."""
        return {k: v for k, v in cls(**args).to_dict().items() if k not in ("dropout", "decoder_dropout")}


def subsampled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """T' = ceil(ceil(T/2)/2)."""
    half = torch.div(lengths + 1, 2, rounding_mode="floor")
    return torch.div(half + 1, 2, rounding_mode="floor")


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class Normalizer(nn.Module):
    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def forward(self, x):
        return (x - self.mean) / self.std


class Subsampling(nn.Module):
    """Two Conv2d(k=3, stride=2, padding=1) + ReLU, then Linear(C*F', d); time and frequency /4."""

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        f_out = ((n_mels + 1) // 2 + 1) // 2
        self.out = nn.Linear(channels * f_out, d_model)

    def forward(self, x, lengths):
        # x: (B, T, n_mels), already zero on padded frames
        h = F.relu(self.conv1(x.unsqueeze(1)))                       # (B, C, T1, F1)
        l1 = torch.div(lengths + 1, 2, rounding_mode="floor")
        h = h * length_mask(l1, h.shape[2])[:, None, :, None]
        h = F.relu(self.conv2(h))                                     # (B, C, T2, F2)
        b, c, t, f = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t, c * f)               # index c*F2 + f
        return self.out(h), subsampled_lengths(lengths)


class ConvBlock(nn.Module):
    """x + Linear(SiLU(Linear(LayerNorm(DepthwiseConv1d(x)))))."""

    def __init__(self, d: int, kernel: int, mult: int, dropout: float):
        super().__init__()
        self.dw = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d, bias=True)
        self.norm = nn.LayerNorm(d, eps=1e-5)
        self.ff1 = nn.Linear(d, mult * d)
        self.ff2 = nn.Linear(mult * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        y = (x * mask[..., None]).transpose(1, 2)                     # mask padded frames
        y = self.dw(y).transpose(1, 2)
        y = self.ff2(F.silu(self.ff1(self.norm(y))))
        return x + self.drop(y)


class Encoder(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.subsampling = Subsampling(a.n_mels, a.subsampling_channels, a.d_model)
        self.blocks = nn.ModuleList(ConvBlock(a.d_model, a.kernel_size, a.ff_mult, a.dropout)
                                    for _ in range(a.num_blocks))
        self.norm = nn.LayerNorm(a.d_model, eps=1e-5)

    def forward(self, x, lengths, keep=()):
        """(H, T' lengths); with `keep` (1-based block numbers) also {block: its output},
        the last block's taken after the final norm, as the encoder's output."""
        x, out_lengths = self.subsampling(x, lengths)
        mask = length_mask(out_lengths, x.shape[1])
        kept = {}
        for i, blk in enumerate(self.blocks, 1):
            x = blk(x, mask)
            if i in keep:
                kept[i] = x
        x = self.norm(x)
        if len(self.blocks) in keep:
            kept[len(self.blocks)] = x
        return (x, out_lengths, kept) if keep else (x, out_lengths)


class SelfOrCrossAttention(nn.Module):
    """Multi-head attention with openai-whisper's parameter names (the key has no bias): the
    teacher's blocks (lasr_train.teacher) and the student's Whisper layers (a key padding
    `mask`, B × T, true on real frames)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def split(self, y):
        b, _, d = y.shape
        return y.view(b, -1, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, source):
        """The keys and values of `source`, once per utterance for cross-attention."""
        return self.split(self.key(source)), self.split(self.value(source))

    def forward(self, x, source=None, causal: bool = False, kv=None, mask=None):
        b, t, d = x.shape
        k, v = kv if kv is not None else self.keys_values(x if source is None else source)
        # A causal mask of t queries over as many keys; a query block shorter than the keys
        # (one new token over cached ones) is never asked for here.
        y = F.scaled_dot_product_attention(self.split(self.query(x)), k, v, is_causal=causal and t > 1,
                                           attn_mask=None if mask is None else mask[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class SelfAttentionBlock(nn.Module):
    """Whisper's encoder block: x + Attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP of
    width `ff`; the parameter names are openai-whisper's, so its weights load as they are."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.attn = SelfOrCrossAttention(d, heads)
        self.attn_ln = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))
        self.mlp_ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        x = x + self.drop(self.attn(self.attn_ln(x), mask=mask))
        return x + self.drop(self.mlp(self.mlp_ln(x)))


class WhisperLayersEncoder(nn.Module):
    """Whisper's conv front end (Conv1d k3, GELU, Conv1d k3 stride 2, GELU: 20 ms frames),
    frame pairs averaged to 40 ms, every second row of its positional table added,
    transformer blocks, LayerNorm, a projection to d_model, and optionally conv blocks
    and a LayerNorm. At 40 ms the blocks cost
    half of what they cost at Whisper's own rate, and the decoder's attention and the
    CTC head read the frame rate they were built for."""

    def __init__(self, a: ModelArgs):
        super().__init__()
        d = a.whisper_state
        self.conv1 = nn.Conv1d(a.n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.zeros(a.whisper_ctx, d))
        self.blocks = nn.ModuleList(SelfAttentionBlock(d, a.whisper_heads, a.whisper_ff, a.dropout)
                                    for _ in range(a.whisper_layers))
        self.ln_post = nn.LayerNorm(d)
        self.proj = nn.Linear(d, a.d_model)
        # Whisper's last layer feeds a cross-attending decoder, not a frame-level CTC head:
        # a few conv blocks give the head local context (the probe's reading, README)
        self.conv_blocks = nn.ModuleList(ConvBlock(a.d_model, a.kernel_size, a.ff_mult, a.dropout)
                                         for _ in range(a.whisper_conv_blocks))
        self.conv_norm = nn.LayerNorm(a.d_model) if a.whisper_conv_blocks else None

    def forward(self, x, lengths, keep=()):
        # x: (B, T, n_mels), zero on padded frames; padded positions are zeroed after
        # each conv so that a batch's padding never leaks into an utterance's frames
        h = F.gelu(self.conv1(x.transpose(1, 2)))
        h = h * length_mask(lengths, h.shape[2])[:, None, :]
        h = F.gelu(self.conv2(h))
        l1 = torch.div(lengths + 1, 2, rounding_mode="floor")
        h = h * length_mask(l1, h.shape[2])[:, None, :]
        if h.shape[2] % 2:
            h = F.pad(h, (0, 1))
        h = 0.5 * (h[:, :, 0::2] + h[:, :, 1::2]).transpose(1, 2)       # (B, T', d)
        out_lengths = subsampled_lengths(lengths)
        t = h.shape[1]
        if t > self.positional_embedding.shape[0]:
            raise ValueError(f"{t} frames of 40 ms exceed the encoder's {self.positional_embedding.shape[0]} positions")
        h = h + self.positional_embedding[:t]
        mask = length_mask(out_lengths, t)
        kept = {}
        for i, blk in enumerate(self.blocks, 1):
            h = blk(h, mask)
            if i in keep and i != len(self.blocks):
                kept[i] = h
        h = self.proj(self.ln_post(h))
        for blk in self.conv_blocks:
            h = blk(h, mask)
        if self.conv_norm is not None:
            h = self.conv_norm(h)
        if len(self.blocks) in keep:
            kept[len(self.blocks)] = h
        return (h, out_lengths, kept) if keep else (h, out_lengths)


class Attention(nn.Module):
    """`location` (Chorowski et al. 2015) or scaled `dot` attention; values are the encoder output."""

    def __init__(self, a: ModelArgs):
        super().__init__()
        self.type = a.attention_type
        A = a.attention_dim
        self.dim = A
        if self.type == "location":
            self.key = nn.Linear(a.d_model, A, bias=False)
            self.query = nn.Linear(a.hidden, A, bias=True)
            self.loc_conv = nn.Conv1d(1, a.location_filters, 2 * a.location_radius + 1,
                                      padding=a.location_radius, bias=False)
            self.loc_proj = nn.Linear(a.location_filters, A, bias=False)
            self.score = nn.Linear(A, 1, bias=False)
        elif self.type == "dot":
            self.key = nn.Linear(a.d_model, A, bias=True)
            self.query = nn.Linear(a.hidden, A, bias=True)
        else:
            raise ValueError(f"unknown attention type {self.type!r}")

    def keys(self, enc):
        return self.key(enc)                                          # (B, T', A)

    def forward(self, s, keys, prev_alpha, mask):
        """s (B, h), keys (B, T', A), prev_alpha (B, T'), mask (B, T') -> alpha (B, T')."""
        q = self.query(s)                                             # (B, A)
        if self.type == "location":
            f = self.loc_conv(prev_alpha.unsqueeze(1)).transpose(1, 2)   # (B, T', n_f)
            e = self.score(torch.tanh(q.unsqueeze(1) + keys + self.loc_proj(f))).squeeze(-1)
        else:
            e = torch.einsum("ba,bta->bt", q, keys) / math.sqrt(self.dim)
        e = e.masked_fill(~mask, float("-inf"))
        return torch.softmax(e, dim=-1)


class Decoder(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.embed = nn.Embedding(a.vocab_size, a.embed_dim)
        self.lstm = nn.LSTMCell(a.embed_dim + a.d_model, a.hidden)
        self.attention = Attention(a)
        self.out = nn.Linear(a.hidden + a.d_model, a.vocab_size)
        self.drop = nn.Dropout(a.decoder_dropout) if a.decoder_dropout > 0 else nn.Identity()
        self.hidden = a.hidden
        self.d_model = a.d_model

    def init_state(self, enc, enc_lengths):
        b, t, _ = enc.shape
        mask = length_mask(enc_lengths, t)
        alpha = mask.float() / enc_lengths.clamp(min=1)[:, None].float()
        z = enc.new_zeros(b, self.hidden)
        return {"s": z, "cell": z.clone(), "ctx": enc.new_zeros(b, self.d_model), "alpha": alpha,
                "keys": self.attention.keys(enc), "mask": mask}

    def step(self, y_prev, state, enc):
        """One decoder step; returns (logits (B, V), new state)."""
        inp = torch.cat([self.drop(self.embed(y_prev)), state["ctx"]], dim=-1)
        s, cell = self.lstm(inp, (state["s"], state["cell"]))
        alpha = self.attention(s, state["keys"], state["alpha"], state["mask"])
        ctx = torch.bmm(alpha.unsqueeze(1), enc).squeeze(1)
        logits = self.out(self.drop(torch.cat([s, ctx], dim=-1)))
        new = dict(state, s=s, cell=cell, ctx=ctx, alpha=alpha)
        return logits, new

    def forward(self, enc, enc_lengths, ys_in):
        """Teacher forcing: ys_in (B, U) starting with <sos/eos> -> logits (B, U, V).

        The same math as U calls of `step`; the embedding and the output
        projection do not feed back into the recurrence, so they run once over all
        steps. (Measured with training/bench_step.py, this did not change the step
        time beyond the machine's noise: the encoder and the recurrence dominate.)
        """
        state = self.init_state(enc, enc_lengths)
        emb = self.drop(self.embed(ys_in))                             # (B, U, e)
        s, cell, ctx, alpha = state["s"], state["cell"], state["ctx"], state["alpha"]
        keys, mask = state["keys"], state["mask"]
        states, contexts = [], []
        for i in range(ys_in.shape[1]):
            s, cell = self.lstm(torch.cat([emb[:, i], ctx], dim=-1), (s, cell))
            alpha = self.attention(s, keys, alpha, mask)
            ctx = torch.bmm(alpha.unsqueeze(1), enc).squeeze(1)
            states.append(s)
            contexts.append(ctx)
        return self.out(self.drop(torch.cat([torch.stack(states, dim=1), torch.stack(contexts, dim=1)], dim=-1)))


class LasrModel(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.args = a
        self.normalizer = Normalizer(a.n_mels)
        self.encoder = WhisperLayersEncoder(a) if a.encoder_type == "whisper" else Encoder(a)
        self.ctc = nn.Linear(a.d_model, a.vocab_size)
        self.decoder = Decoder(a)

    def encode(self, feats, lengths):
        """feats (B, T, n_mels) raw log-mel -> (H (B, T', d), T' lengths)."""
        x = self.normalizer(feats)
        x = x * length_mask(lengths, x.shape[1])[..., None]
        return self.encoder(x, lengths)

    def normalized(self, feats):
        return self.normalizer(feats)

    def forward_loss(self, x_norm, lengths, targets, target_lengths, ctc_weight=0.3, label_smoothing=0.1,
                     already_normalized=True, keep_blocks=()):
        """Joint loss; `targets` (B, U) padded with -1. Returns (loss, ctc, att, n_tokens),
        and with `keep_blocks` a fifth item: those encoder blocks' outputs and T' lengths
        ({block: (B, T', d)}, (B,)), for a distillation loss.

        With `ctc_weight` 1 the decoder would get no gradient, so it is not run and
        `att` is None: a CTC-only phase trains the encoder at the encoder's cost alone.
        """
        if not already_normalized:
            x_norm = self.normalizer(x_norm)
        x_norm = x_norm * length_mask(lengths, x_norm.shape[1])[..., None]
        if keep_blocks:
            enc, enc_len, kept = self.encoder(x_norm, lengths, keep=keep_blocks)
            loss = self._joint_loss(enc, enc_len, targets, target_lengths, ctc_weight, label_smoothing)
            return (*loss, (kept, enc_len))
        enc, enc_len = self.encoder(x_norm, lengths)
        return self._joint_loss(enc, enc_len, targets, target_lengths, ctc_weight, label_smoothing)

    def _joint_loss(self, enc, enc_len, targets, target_lengths, ctc_weight, label_smoothing):
        n_tok = int(target_lengths.sum())
        # CTC
        lp = F.log_softmax(self.ctc(enc), dim=-1).transpose(0, 1)
        flat = torch.cat([targets[i, : target_lengths[i]] for i in range(len(targets))])
        ctc = F.ctc_loss(lp, flat, enc_len, target_lengths, blank=BLANK, reduction="sum", zero_infinity=True)
        if ctc_weight >= 1.0:
            return ctc / n_tok, ctc / n_tok, None, n_tok
        # attention
        b = targets.shape[0]
        sos = torch.full((b, 1), SOS_EOS, dtype=torch.long, device=targets.device)
        ys_in = torch.cat([sos, targets.clamp(min=0)], dim=1)          # pads become id 0 (ignored below)
        ys_out = torch.cat([targets, torch.full_like(sos, -1)], dim=1)
        ys_out[torch.arange(b, device=targets.device), target_lengths] = SOS_EOS
        logits = self.decoder(enc, enc_len, ys_in)
        att = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys_out.reshape(-1), ignore_index=-1,
                              label_smoothing=label_smoothing, reduction="sum")
        n_att = n_tok + b
        loss = ctc_weight * ctc / n_tok + (1 - ctc_weight) * att / n_att
        return loss, ctc / n_tok, att / n_att, n_tok


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
