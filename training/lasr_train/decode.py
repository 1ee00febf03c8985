"""Reference decoding: CTC greedy, attention greedy, joint CTC/attention beam search.

The beam search is the reference the Swift engine reproduces; docs/model-format.md
("Decoding") states the same algorithm.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .tokenizer import BLANK, SOS_EOS

NEG_INF = -1e30


def ctc_greedy(logprobs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path, collapse repeats, drop blanks. logprobs (B, T', V)."""
    best = logprobs.argmax(-1)
    out = []
    for b in range(best.shape[0]):
        seq, prev = [], -1
        for t in best[b, : int(lengths[b])].tolist():
            if t != prev and t != BLANK:
                seq.append(t)
            prev = t
        out.append(seq)
    return out


@torch.no_grad()
def attention_greedy(model, enc, enc_len, max_len_ratio: float = 0.5, return_trace: int = 0):
    """Batched greedy decoding with the attention decoder. With return_trace=n also returns
    the attention weights (B, n, T') and log-probs (B, n, V) of the first n steps."""
    dec = model.decoder
    b = enc.shape[0]
    state = dec.init_state(enc, enc_len)
    y = torch.full((b,), SOS_EOS, dtype=torch.long, device=enc.device)
    max_len = max(1, int(max_len_ratio * int(enc_len.max())))
    done = torch.zeros(b, dtype=torch.bool)
    seqs = [[] for _ in range(b)]
    atts, lps = [], []
    for i in range(max_len):
        logits, state = dec.step(y, state, enc)
        lp = F.log_softmax(logits, dim=-1)
        if i < return_trace:
            atts.append(state["alpha"].clone())
            lps.append(lp.clone())
        y = lp.argmax(-1)
        for k in range(b):
            if not done[k]:
                if int(y[k]) == SOS_EOS or i >= int(max_len_ratio * int(enc_len[k])):
                    done[k] = True
                else:
                    seqs[k].append(int(y[k]))
        if bool(done.all()) and i + 1 >= return_trace:
            break
    if return_trace:
        return seqs, torch.stack(atts, 1), torch.stack(lps, 1)
    return seqs


class CTCPrefixScorer:
    """CTC prefix probabilities (Watanabe et al. 2017, Algorithm 2), in log space, float64.

    State of a prefix g: arrays r_n(t), r_b(t) over t = 0..T'-1 (log prob of g ending at t in
    a non-blank / blank) and its prefix score psi(g).
    """

    def __init__(self, logprobs: np.ndarray):
        self.x = np.asarray(logprobs, dtype=np.float64)      # (T', V)
        self.T = self.x.shape[0]

    def initial(self):
        r_n = np.full(self.T, NEG_INF)
        r_b = np.cumsum(self.x[:, BLANK])
        return r_n, r_b, 0.0

    def extend(self, state, last: int, cands: np.ndarray):
        """Scores psi(g + c) for the candidates c (non-eos), and their new (r_n, r_b) arrays."""
        r_n_g, r_b_g, _ = state
        T = self.T
        n = len(cands)
        r_n = np.full((T, n), NEG_INF)
        r_b = np.full((T, n), NEG_INF)
        xc = self.x[:, cands]                                  # (T, n)
        if last == SOS_EOS:   # empty prefix
            r_n[0] = xc[0]
        phi_all = np.logaddexp(r_b_g, r_n_g)                     # (T,)
        same = cands == last
        psi = r_n[0].copy()
        for t in range(1, T):
            phi = np.where(same, r_b_g[t - 1], phi_all[t - 1])
            r_n[t] = np.logaddexp(r_n[t - 1], phi) + xc[t]
            r_b[t] = np.logaddexp(r_b[t - 1], r_n[t - 1]) + self.x[t, BLANK]
            psi = np.logaddexp(psi, phi + xc[t])
        return psi, r_n, r_b

    def final(self, state) -> float:
        r_n, r_b, _ = state
        return float(np.logaddexp(r_n[-1], r_b[-1]))


@torch.no_grad()
def beam_search(model, enc: torch.Tensor, ctc_logprobs: torch.Tensor, beam: int = 8, ctc_weight: float = 0.3,
                length_normalization: bool = True, max_len_ratio: float = 0.5, eos_threshold: float = 1.5,
                nbest: int | None = None):
    """Joint CTC/attention beam search for ONE utterance.

    enc (T', d), ctc_logprobs (T', V). Returns the n-best list, best first:
    [{"tokens": [...], "score": final score, "att": sum log p_att, "ctc": CTC log prob}].
    """
    dec = model.decoder
    T = enc.shape[0]
    enc_b = enc.unsqueeze(0)
    state0 = dec.init_state(enc_b, torch.tensor([T]))
    scorer = CTCPrefixScorer(ctc_logprobs.numpy()) if ctc_weight > 0 else None
    # hypothesis: (tokens, score, att_sum, dec_state, ctc_state)
    hyps = [([], 0.0, 0.0, state0, scorer.initial() if scorer else None)]
    ended = []
    best_ended = -np.inf  # ranking score of the best ended hypothesis
    max_len = max(1, int(max_len_ratio * T))
    pre_beam = int(1.5 * beam) if scorer else beam
    for i in range(max_len + 1):
        cand = []
        for tokens, score, att_sum, st, cst in hyps:
            y_prev = torch.tensor([tokens[-1] if tokens else SOS_EOS])
            logits, st_new = dec.step(y_prev, st, enc_b)
            lp = F.log_softmax(logits[0], dim=-1).double().numpy()
            lp_no_eos = lp.copy()
            lp_no_eos[SOS_EOS] = -np.inf
            lp_no_eos[BLANK] = -np.inf
            top = np.argsort(-lp_no_eos, kind="stable")[:pre_beam]
            top = top[np.isfinite(lp_no_eos[top])]
            if i == max_len:
                top = top[:0]
            # end of sentence: allowed when log p(eos) >= eos_threshold * max_{c != eos, blank} log p(c),
            # forced at the last step
            if lp[SOS_EOS] >= eos_threshold * lp_no_eos.max() or i == max_len:
                if scorer:
                    ctc_eos = scorer.final(cst) - cst[2]
                    s = score + (1 - ctc_weight) * lp[SOS_EOS] + ctc_weight * ctc_eos
                else:
                    s = score + lp[SOS_EOS]
                ended.append((tokens, s, att_sum + lp[SOS_EOS], (scorer.final(cst) if scorer else 0.0)))
                best_ended = max(best_ended, _rank(s, len(tokens), length_normalization))
            if len(top) == 0:
                continue
            last = tokens[-1] if tokens else SOS_EOS
            if scorer:
                psi, r_n, r_b = scorer.extend(cst, last, top)
                for k, c in enumerate(top):
                    s = score + (1 - ctc_weight) * lp[c] + ctc_weight * (psi[k] - cst[2])
                    cand.append((s, tokens + [int(c)], att_sum + lp[c], st_new, (r_n[:, k], r_b[:, k], psi[k])))
            else:
                for c in top:
                    cand.append((score + lp[c], tokens + [int(c)], att_sum + lp[c], st_new, None))
        cand.sort(key=lambda c: -c[0])
        hyps = [(c[1], c[0], c[2], c[3], c[4]) for c in cand[:beam]]
        # stop once no running hypothesis ranks above the best ended one (exact without length
        # normalization, since scores only fall; a per-token heuristic with it)
        if not hyps or all(_rank(h[1], len(h[0]), length_normalization) < best_ended for h in hyps):
            break
    res = [{"tokens": e[0], "score": _final(e, length_normalization), "raw_score": float(e[1]),
            "att": float(e[2]), "ctc": float(e[3])} for e in ended]
    res.sort(key=lambda r: -r["score"])
    return res[: nbest or beam]


def _rank(score: float, n_tokens: int, length_normalization: bool) -> float:
    """Score per token (tokens + 1 for eos) with length normalization, else the score."""
    return score / (n_tokens + 1) if length_normalization else score


def _final(e, length_normalization):
    """Ranking score of an ended hypothesis: total score, divided by (tokens + 1 for eos) if normalized."""
    return _rank(float(e[1]), len(e[0]), length_normalization)


def words_of(tokenizer, ids) -> str:
    return tokenizer.decode(ids)
