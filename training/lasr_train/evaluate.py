"""WER/CER by corpus on a manifest (default: dev.jsonl), after `normalize_text`.

    python -m lasr_train.evaluate --model models/default --manifest /work/shared/speech/dev.jsonl \
        [--mode beam|att|ctc] [--limit N]
Either --model (an exported model directory) or --checkpoint (a training checkpoint)
with --tokens.
"""
from __future__ import annotations

import argparse
import json
import time

import torch


def levenshtein(ref: list, hyp: list) -> tuple[int, int, int, int]:
    """(substitutions, deletions, insertions, edit distance) of an optimal alignment."""
    n, m = len(ref), len(hyp)
    # dp[j] = (cost, subs, dels, ins)
    prev = [(j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            if ref[i - 1] == hyp[j - 1]:
                best = prev[j - 1]
            else:
                s, d, ins = prev[j - 1], prev[j], cur[j - 1]
                best = min((s[0] + 1, s[1] + 1, s[2], s[3]), (d[0] + 1, d[1], d[2] + 1, d[3]),
                           (ins[0] + 1, ins[1], ins[2], ins[3] + 1))
            cur.append(best)
        prev = cur
    c, s, d, ins = prev[m]
    return s, d, ins, c


def wer_counts(ref: list, hyp: list) -> tuple[int, int]:
    """(edit distance, reference length)."""
    return levenshtein(ref, hyp)[3], len(ref)


def main(argv=None):
    from .audio import load_audio
    from .config import feature_config
    from .decode import attention_greedy, beam_search, ctc_greedy
    from .export import load_model_dir, load_checkpoint_model
    from .features import log_mel
    from .manifest import read_manifest
    from .text import normalize_text

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="exported model directory")
    ap.add_argument("--checkpoint")
    ap.add_argument("--tokens")
    ap.add_argument("--manifest", default="/work/shared/speech/dev.jsonl")
    ap.add_argument("--mode", default="beam", choices=["beam", "att", "ctc"])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write per-utterance hypotheses (jsonl)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.model:
        model, cfg, tok = load_model_dir(a.model)
    else:
        model, cfg, tok = load_checkpoint_model(a.checkpoint, a.tokens)
    model.eval()
    fcfg = feature_config(cfg)
    dc = cfg["decoding"]
    utts = read_manifest(a.manifest, limit=a.limit)
    tot = {}
    f_out = open(a.out, "w") if a.out else None
    t0 = time.time()
    audio = 0.0
    for u in utts:
        x = load_audio(u.path, fcfg.sample_rate)
        audio += len(x) / fcfg.sample_rate
        feats = torch.from_numpy(log_mel(x, fcfg))[None]
        with torch.no_grad():
            enc, enc_len = model.encode(feats, torch.tensor([feats.shape[1]]))
            lp = torch.log_softmax(model.ctc(enc), -1)
            if a.mode == "ctc":
                ids = ctc_greedy(lp, enc_len)[0]
            elif a.mode == "att":
                ids = attention_greedy(model, enc, enc_len, dc["max_len_ratio"])[0]
            else:
                nb = beam_search(model, enc[0], lp[0], beam=dc["beam"], ctc_weight=dc["ctc_weight"],
                                 length_normalization=dc["length_normalization"],
                                 max_len_ratio=dc["max_len_ratio"], eos_threshold=dc["eos_threshold"])
                ids = nb[0]["tokens"] if nb else []
        hyp = tok.decode(ids)
        ref = normalize_text(u.text)
        r = tot.setdefault(u.corpus, [0, 0, 0, 0, 0])
        e, n = wer_counts(ref.split(), hyp.split())
        ce, cn = wer_counts(list(ref), list(hyp))
        r[0] += e; r[1] += n; r[2] += ce; r[3] += cn; r[4] += 1
        if f_out:
            f_out.write(json.dumps({"id": u.id, "corpus": u.corpus, "ref": ref, "hyp": hyp}) + "\n")
    res = {c: {"utterances": v[4], "wer": round(100 * v[0] / max(v[1], 1), 2),
               "cer": round(100 * v[2] / max(v[3], 1), 2)} for c, v in sorted(tot.items())}
    res["_decode"] = {"mode": a.mode, "audio_seconds": round(audio, 1), "wall_seconds": round(time.time() - t0, 1)}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
