"""Vocabulary: ids 0 `<blank>`, 1 `<sos/eos>`, 2 `<unk>`, then SentencePiece pieces or characters.

`tokens.txt` holds one piece per line; line number (0-based) = id. Word
boundaries are the `▁` marker (U+2581) in both vocabulary types: a piece that
starts with `▁` begins a new word. Decoding ids to text: concatenate the pieces,
replace `▁` by a space, strip.

SentencePiece: unigram model trained with vocab_size = size - 2 and its own
`<unk>` at its id 0, which maps to our id 2; piece k of the SentencePiece model
is our id k + 2. Characters: `▁`, apostrophe, a-z (size 31).

    python -m lasr_train.tokenizer --config configs/default.yaml --manifests ... --text ... --out DIR
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from .manifest import read_manifest
from .text import normalize_text

SPECIALS = ["<blank>", "<sos/eos>", "<unk>"]
BLANK, SOS_EOS, UNK = 0, 1, 2
WB = "\u2581"


class Tokenizer:
    def __init__(self, pieces: list[str], sp_model_path: str | None = None):
        assert pieces[:3] == SPECIALS, pieces[:3]
        self.pieces = pieces
        self.index = {p: i for i, p in enumerate(pieces)}
        self.sp = None
        if sp_model_path:
            import sentencepiece as spm
            self.sp = spm.SentencePieceProcessor(model_file=str(sp_model_path))

    @property
    def size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        """Normalized text -> ids (no specials added)."""
        if self.sp is not None:
            return [i + 2 for i in self.sp.encode(text)]
        ids = []
        for w in text.split():
            for k, ch in enumerate(w):
                p = (WB + ch) if k == 0 else ch
                if p in self.index:
                    ids.append(self.index[p])
                else:
                    if k == 0:
                        ids.append(self.index[WB])
                    ids.append(self.index.get(ch, UNK))
        return ids

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i < 3:
                continue
            out.append(self.pieces[i])
        return "".join(out).replace(WB, " ").strip()

    @classmethod
    def load(cls, directory: str | Path) -> "Tokenizer":
        d = Path(directory)
        pieces = (d / "tokens.txt").read_text(encoding="utf-8").split("\n")
        if pieces and pieces[-1] == "":
            pieces = pieces[:-1]
        sp = d / "sentencepiece.model"
        return cls(pieces, str(sp) if sp.exists() else None)


def train_tokenizer(texts: list[str], vocab_type: str, size: int, out_dir: str | Path, seed: int = 0) -> Tokenizer:
    """Build the vocabulary from normalized `texts`, write tokens.txt (and sentencepiece.model)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if vocab_type == "characters":
        pieces = SPECIALS + [WB, "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
        sp_path = None
        if (out / "sentencepiece.model").exists():
            (out / "sentencepiece.model").unlink()
    elif vocab_type == "sentencepiece":
        import sentencepiece as spm
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=size - 2,
            model_type="unigram", character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
            unk_piece="<unk>", split_digits=False, normalization_rule_name="identity",
            add_dummy_prefix=True, remove_extra_whitespaces=True,
            input_sentence_size=0, shuffle_input_sentence=False, num_threads=1,
            minloglevel=2)
        sp_path = out / "sentencepiece.model"
        sp_path.write_bytes(model.getvalue())
        sp = spm.SentencePieceProcessor(model_file=str(sp_path))
        pieces = SPECIALS + [sp.id_to_piece(i) for i in range(1, sp.get_piece_size())]
    else:
        raise ValueError(f"unknown vocabulary type {vocab_type!r}")
    if len(pieces) != size and vocab_type == "sentencepiece":
        raise RuntimeError(f"vocabulary has {len(pieces)} entries, config asks for {size}")
    (out / "tokens.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return Tokenizer(pieces, str(sp_path) if sp_path else None)


def main(argv=None):
    from .config import load_config
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=None)
    ap.add_argument("--manifests", nargs="+", required=True, help="training manifests (their transcripts)")
    ap.add_argument("--text", nargs="*", default=[], help="extra prompt text files, one sentence a line")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key.sub=value")
    ap.add_argument("--skip-existing", action="store_true", help="do nothing if OUT/tokens.txt exists")
    a = ap.parse_args(argv)
    if a.skip_existing and (Path(a.out) / "tokens.txt").exists():
        print(f"{a.out}/tokens.txt exists; keeping it")
        return
    from .train import parse_overrides
    from .config import merge
    cfg = load_config(a.config) if a.config else load_config()
    cfg = merge(cfg, parse_overrides(a.set))
    texts = []
    for m in a.manifests:
        texts += [normalize_text(u.text) for u in read_manifest(m)]
    for t in a.text:
        texts += [normalize_text(line) for line in Path(t).read_text(encoding="utf-8").splitlines()]
    texts = sorted(set(t for t in texts if t))
    voc = cfg["vocabulary"]
    tok = train_tokenizer(texts, voc["type"], int(voc["size"]), a.out)
    print(f"vocabulary: {tok.size} entries from {len(texts)} sentences -> {a.out}")


if __name__ == "__main__":
    main()
