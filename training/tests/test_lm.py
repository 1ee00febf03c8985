"""The language model recipe on a few hundred sentences: text preparation, batches,
resume that continues exactly, export into a model directory, perplexity."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file

from lasr_train import lm
from lasr_train.tokenizer import SOS_EOS

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "Tests/LasrTests/Fixtures/tiny-model"
PARAGRAPHS = [
    "The weather will be cloudy in the morning. Light rain is expected after 3 o'clock!",
    "CHAPTER IV. THE ISLANDS VANISH 27",
    "He said, “Well, come in.” She smiled; it was the 2nd time that day.",
    "Welcome to the library. Please return your books by Friday? Thank you.",
] * 60


def small_run(data, out, hidden, embed, max_steps):
    """A one-layer LM trained a few steps, for the export tests."""
    return lm.train(str(data), str(out), hidden=hidden, embed=embed, layers=1, batch_tokens=256,
                    max_steps=max_steps, lr=3e-3, warmup=1, resume=False, eval_every=100, save_every=100,
                    seed=1, threads=1)


@pytest.fixture()
def text_file(tmp_path):
    p = tmp_path / "books.txt"
    p.write_text("\n".join(PARAGRAPHS) + "\n")
    return p


@pytest.fixture()
def trained(tmp_path, text_file):
    """Prepared data, a 1 × 12 LM trained 6 steps on it, and a copy of the tiny model to export into."""
    data = tmp_path / "data"
    lm.prepare([str(text_file)], str(TINY), str(data), jobs=1)
    ckpt = small_run(data, tmp_path / "run", hidden=12, embed=6, max_steps=6)
    model_dir = tmp_path / "model"
    shutil.copytree(TINY, model_dir)
    return data, ckpt, model_dir


def test_sentences_are_split_normalized_and_headings_dropped(tmp_path, text_file):
    assert lm.split_sentences("One. Two! “Three?” Four") == ["One.", "Two!", "“Three?”", "Four"]
    meta = lm.prepare([str(text_file)], str(TINY), str(tmp_path / "data"), jobs=1)
    assert meta["vocabulary_crc32"] == lm.vocabulary_checksum(TINY / "tokens.txt")
    stream = np.fromfile(tmp_path / "data/train.u16", dtype=np.uint16)
    assert stream[0] == SOS_EOS and stream[-1] == SOS_EOS
    bounds = lm.sentence_bounds(stream)
    # Seven sentences in each group of four paragraphs; the heading is not prose.
    assert meta["train_sentences"] + meta["heldout_sentences"] == 7 * 60
    assert len(bounds) == meta["train_sentences"]
    tok = lm.load_tokenizer(TINY)
    texts = {tok.decode(stream[s:e].tolist()) for s, e in bounds}
    assert "light rain is expected after three o'clock" in texts
    assert not any("chapter" in t for t in texts)
    # A second call finds the work done.
    assert lm.prepare([str(text_file)], str(TINY), str(tmp_path / "data"), jobs=1) == meta


def test_batches_pad_targets_and_start_each_sentence_from_sos(tmp_path, text_file):
    lm.prepare([str(text_file)], str(TINY), str(tmp_path / "data"), jobs=1)
    stream = np.fromfile(tmp_path / "data/train.u16", dtype=np.uint16)
    bounds = lm.sentence_bounds(stream)
    x, y = lm.make_batch(stream, bounds, [0, 1])
    assert (x[:, 0] == SOS_EOS).all()
    n0 = int(bounds[0, 1] - bounds[0, 0])
    assert y[0, n0] == SOS_EOS and (y[0, n0 + 1:] == -100).all()
    assert torch.equal(x[0, 1:n0 + 1], y[0, :n0])


def test_spans_run_across_sentence_ends_but_not_paragraphs(tmp_path, text_file):
    data = tmp_path / "data"
    meta = lm.prepare([str(text_file)], str(TINY), str(data), jobs=1)
    stream = np.fromfile(data / "train.u16", dtype=np.uint16)
    last = np.fromfile(data / "train.last.u8", dtype=np.uint8)
    bounds = lm.sentence_bounds(stream)
    assert len(last) == len(bounds) and last[-1] == 1
    tok = lm.load_tokenizer(TINY)
    # Each paragraph's running text, as a span would read it.
    paragraphs, current = set(), []
    for (s, e), end in zip(bounds, last):
        current.append(tok.decode(stream[s:e].tolist()))
        if end:
            paragraphs.add(" ".join(current))
            current = []
    spans = lm.Spans(stream, bounds, last, meta["word_start_tokens"], (2, 12))
    ranges = spans.draw(np.arange(len(bounds)), np.random.default_rng(3))
    starts_word = set(meta["word_start_tokens"])
    texts = []
    for s, e in ranges:
        assert stream[s] in starts_word and e > s
        body = stream[s:e]
        texts.append(tok.decode(body[body != SOS_EOS].tolist()))
        assert 1 <= len(texts[-1].split()) <= 12
        assert any(texts[-1] in p for p in paragraphs), texts[-1]
    # Some spans cross a sentence end, some begin inside a sentence.
    assert any((stream[s:e] == SOS_EOS).any() for s, e in ranges)
    sentence_starts = set(bounds[:, 0].tolist())
    assert any(s not in sentence_starts for s, _ in ranges)
    x, y = lm.make_batch(stream, ranges, [0])
    n = int((y[0] != -100).sum())
    assert x[0, 0] == SOS_EOS and y[0, n - 1] == SOS_EOS and not (x[0, 1:n] == SOS_EOS).any()


def test_data_of_the_older_layout_is_prepared_again(tmp_path, text_file):
    data = tmp_path / "data"
    meta = lm.prepare([str(text_file)], str(TINY), str(data), jobs=1)
    old = {k: v for k, v in meta.items() if k not in ("format", "word_start_tokens")}
    (data / "meta.json").write_text(json.dumps(old))
    (data / "train.last.u8").unlink()
    with pytest.raises(SystemExit, match="older layout"):
        small_run(data, tmp_path / "run", hidden=8, embed=4, max_steps=1)
    assert lm.prepare([str(text_file)], str(TINY), str(data), jobs=1)["format"] == lm.DATA_FORMAT
    assert (data / "train.last.u8").exists()


@pytest.mark.parametrize("spans", [0.0, 0.5])
def test_resume_continues_exactly(tmp_path, text_file, spans):
    data = tmp_path / "data"
    lm.prepare([str(text_file)], str(TINY), str(data), jobs=1)
    args = dict(hidden=16, embed=8, layers=2, batch_tokens=256, lr=3e-3, warmup=2, eval_every=4,
                save_every=3, seed=7, threads=1, log_every=2, spans=spans, span_words=(2, 20))
    lm.train(str(data), str(tmp_path / "a"), max_steps=8, resume=False, **args)
    # Stopped at step 5 and resumed: the same weights as the straight run.
    lm.train(str(data), str(tmp_path / "b"), max_steps=8, resume=False, stop_at=5, **args)
    assert torch.load(tmp_path / "b/last.pt", weights_only=False)["step"] == 5
    lm.train(str(data), str(tmp_path / "b"), max_steps=8, resume=True, **args)
    a = torch.load(tmp_path / "a/last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b/last.pt", weights_only=False)["model"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    log = torch.load(tmp_path / "a/last.pt", weights_only=False)["log"]
    assert any("heldout_token_perplexity" in e and "heldout_span_perplexity" in e for e in log)
    # Resuming with other sequences would not continue the same batches.
    with pytest.raises(SystemExit, match="batches would differ"):
        lm.train(str(data), str(tmp_path / "b"), max_steps=9, resume=True, **dict(args, spans=0.25))


def test_a_run_starts_from_an_exported_lm(tmp_path, trained):
    data, ckpt, model_dir = trained
    info = lm.export(str(ckpt), str(model_dir), None, weight=0.2, length_bonus=1.0)
    args = dict(hidden=12, embed=6, layers=1, batch_tokens=256, max_steps=2, lr=1e-3, warmup=1, eval_every=100,
                save_every=100, seed=1, threads=1)
    lm.train(str(data), str(tmp_path / "more"), resume=False, init=str(model_dir / "lm.safetensors"), **args)
    ck = torch.load(tmp_path / "more/last.pt", weights_only=False)
    # The run begins where the export left off: its float16 weights, its perplexity.
    assert ck["log"][0]["step"] == 0
    assert ck["log"][0]["heldout_token_perplexity"] == pytest.approx(info["heldout_token_perplexity"], rel=1e-5)
    assert ck["init"] == str(model_dir / "lm.safetensors")
    with pytest.raises(SystemExit, match="--hidden"):
        lm.train(str(data), str(tmp_path / "wide"), resume=False, init=str(model_dir / "lm.safetensors"),
                 **dict(args, hidden=16))
    # Or from an earlier stage's checkpoint, at full precision.
    lm.train(str(data), str(tmp_path / "stage2"), resume=False, init=str(ckpt), **args)
    source, _ = lm.load_checkpoint(ckpt)
    heldout = np.fromfile(data / "heldout.u16", dtype=np.uint16)
    first = torch.load(tmp_path / "stage2/last.pt", weights_only=False)["log"][0]
    assert first["heldout_token_perplexity"] == pytest.approx(lm.perplexity(source, heldout)["token_perplexity"], rel=1e-6)
    with pytest.raises(SystemExit, match="--hidden"):
        lm.train(str(data), str(tmp_path / "wide2"), resume=False, init=str(ckpt), **dict(args, hidden=16))


def test_an_adaptation_stage_reads_the_transcripts_added_to_the_books(tmp_path, trained):
    """A manifest's transcripts are prepared as text (lowercase, one paragraph each); a run
    with --add-data trains on the books plus K copies of them, holds out only the books',
    resumes only with the same addition, and its export's card says what it read."""
    data, ckpt, model_dir = trained
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"id": str(i), "audio": "x.opus", "text": t}) + "\n" for i, t in enumerate(
        ["MIKE LIKES THE OLD DRESS", "IT IS RAINING IN THE MORNING", "ANN WAS TALKING TO SCHOOL"] * 3)))
    tdata = tmp_path / "tdata"
    meta = lm.prepare([str(manifest)], str(TINY), str(tdata), jobs=1)
    assert meta["train_sentences"] + meta["heldout_sentences"] == 9
    tok = lm.load_tokenizer(TINY)
    tstream = np.fromfile(tdata / "train.u16", dtype=np.uint16)
    assert "mike likes the old dress" in {tok.decode(tstream[s:e].tolist()) for s, e in lm.sentence_bounds(tstream)}
    args = dict(hidden=12, embed=6, layers=1, batch_tokens=256, max_steps=3, lr=1e-3, warmup=1, eval_every=100,
                save_every=1, seed=1, threads=1)
    lm.train(str(data), str(tmp_path / "adapt"), resume=False, init=str(ckpt), add_data=[(str(tdata), 3)], **args)
    ck = torch.load(tmp_path / "adapt/last.pt", weights_only=False)
    assert [(a["copies"], a["sentences"]) for a in ck["added_data"]] == [(3, meta["train_sentences"])]
    # The held-out slice is the books' alone: the run starts at the perplexity its init had there.
    source, _ = lm.load_checkpoint(ckpt)
    heldout = np.fromfile(data / "heldout.u16", dtype=np.uint16)
    assert ck["log"][0]["heldout_token_perplexity"] == pytest.approx(lm.perplexity(source, heldout)["token_perplexity"], rel=1e-6)
    # The batches draw from the books and the copies: one stream of sentences, paragraph flags for each.
    books = np.fromfile(data / "train.u16", dtype=np.uint16)
    stream, last, _ = lm.training_text(data, json.loads((data / "meta.json").read_text()), [(str(tdata), 3)])
    assert np.array_equal(stream, np.concatenate([books] + [tstream[1:]] * 3))
    assert len(lm.sentence_bounds(stream)) == len(lm.sentence_bounds(books)) + 3 * meta["train_sentences"] == len(last)
    with pytest.raises(SystemExit, match="add-data"):
        lm.train(str(data), str(tmp_path / "adapt"), resume=True, init=str(ckpt), add_data=[(str(tdata), 2)],
                 **dict(args, max_steps=4))
    lm.export(str(tmp_path / "adapt/last.pt"), str(model_dir), None, weight=0.3, length_bonus=1.0, internal_lm_weight=0.15)
    cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert cfg["lm"]["internal_lm_weight"] == 0.15
    (model_dir / "MODEL_CARD.md").write_text("# m\n\n## Limitations\n\nSome.\n")
    lm.export(str(tmp_path / "adapt/last.pt"), str(model_dir), None, weight=0.3, length_bonus=1.0, internal_lm_weight=0.15)
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert "3 copies of the transcripts of train.jsonl" in card
    assert "6 steps on that text" in card and "then 3 more on it with the added text (" in card
    assert "internal-LM discount 0.15" in card
    # Without a discount the section has no key for it.
    lm.export(str(ckpt), str(model_dir), None, weight=0.3, length_bonus=1.0)
    assert "internal_lm_weight" not in yaml.safe_load((model_dir / "config.yaml").read_text())["lm"]
    assert lm.parse_added("a/b:80") == ("a/b", 80) and lm.parse_added("a/b") == ("a/b", 1)
    with pytest.raises(SystemExit, match="DIR:K"):
        lm.parse_added("a/b:many")


def test_export_writes_weights_config_and_fixture(tmp_path, trained):
    _, ckpt, model_dir = trained
    info = lm.export(str(ckpt), str(model_dir), str(tmp_path / "fix"), weight=0.4, length_bonus=0.5)
    cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert cfg["lm"]["hidden"] == 12 and cfg["lm"]["weight"] == 0.4 and cfg["lm"]["length_bonus"] == 0.5
    assert cfg["lm"]["vocabulary_crc32"] == lm.vocabulary_checksum(model_dir / "tokens.txt")
    assert cfg["decoding"] == yaml.safe_load((TINY / "config.yaml").read_text())["decoding"]
    tensors = load_file(str(model_dir / "lm.safetensors"))
    assert tensors["lm.embed.weight"].dtype == np.float16 and tensors["lm.lstm0.weight_hh"].shape == (48, 12)
    fixture = load_file(str(tmp_path / "fix/lm-parity.safetensors"))
    assert fixture["log_probs"].shape == (len(fixture["tokens"]) - 1, 64)
    assert np.allclose(np.exp(fixture["log_probs"]).sum(1), 1, atol=1e-4)
    assert info["heldout_token_perplexity"] > 1
    assert cfg["lm"]["length_normalization"] is False
    # Exporting again replaces the section instead of adding a second one; so for the card's.
    (model_dir / "MODEL_CARD.md").write_text("# m\n\n## Training run\n\n- a: 1\n\n## Limitations\n\nSome.\n")
    lm.export(str(ckpt), str(model_dir), None, weight=0.2, length_bonus=0.0, length_normalization=True)
    lm.export(str(ckpt), str(model_dir), None, weight=0.25, length_bonus=1.5)
    text = (model_dir / "config.yaml").read_text()
    assert text.count("\nlm:") == 1 and yaml.safe_load(text)["lm"]["weight"] == 0.25
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert card.count(lm.CARD_HEADING) == 1 and card.index(lm.CARD_HEADING) < card.index("## Limitations")
    assert "1-layer LSTM of 12, embedding 6" in card and "6 steps" in card
    assert "weight 0.25, length bonus 1.5, hypotheses ranked by total score" in card
    assert card.endswith("## Limitations\n\nSome.\n") and "- a: 1\n\n## Language model" in card


def test_export_refuses_another_vocabulary(trained):
    _, ckpt, model_dir = trained
    lines = (model_dir / "tokens.txt").read_text().split("\n")
    lines[10], lines[11] = lines[11], lines[10]
    (model_dir / "tokens.txt").write_text("\n".join(lines))
    with pytest.raises(SystemExit, match="another vocabulary"):
        lm.export(str(ckpt), str(model_dir), None, weight=0.3, length_bonus=0.0)


def test_lexicon_lists_the_texts_words_and_joins_the_lm_section(tmp_path, trained):
    data, ckpt, model_dir = trained
    counts = lm.lexicon_counts(str(data), str(model_dir))
    # The training slice's words, normalized as the LM read them (numbers spelled out).
    assert counts["cloudy"] > 50 and counts["three"] > 50 and counts["o'clock"] > 50
    assert "3" not in counts and "chapter" not in counts and "cloudy." not in counts
    (model_dir / "MODEL_CARD.md").write_text("# m\n\n## Limitations\n\nSome.\n")
    lm.export(str(ckpt), str(model_dir), None, weight=0.25, length_bonus=1.0)
    info = lm.write_lexicon(str(data), str(model_dir), min_count=1, penalty=1.5)
    words = (model_dir / "lexicon.txt").read_text().split("\n")
    assert words[-1] == "" and words[:-1] == sorted(counts) and info["words"] == len(counts)
    cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert cfg["lm"]["lexicon"] == "lexicon.txt" and cfg["lm"]["lexicon_penalty"] == 1.5 and cfg["lm"]["weight"] == 0.25
    # Again with a higher count: one section, one card line, fewer words.
    rare = min(counts.values())
    info = lm.write_lexicon(str(data), str(model_dir), min_count=rare + 1, penalty=1.0)
    assert info["words"] == sum(1 for c in counts.values() if c > rare) < len(counts)
    text = (model_dir / "config.yaml").read_text()
    assert text.count("\nlm:") == 1 and yaml.safe_load(text)["lm"]["lexicon_penalty"] == 1.0
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert card.count("- lexicon.txt:") == 1 and card.index("- lexicon.txt:") < card.index("## Limitations")
    # A word list adds its common words: not its names, accents, hyphens or digits.
    wordlist = tmp_path / "words"
    wordlist.write_text("recognizer\nrecognizer's\ncloudy\nAlbuquerque\ncafé\ne-mail\nmp3\n'tis\n\nemail\n")
    (tmp_path / "copyright").write_text("Copyright 2000 by A. Author; permission granted\n")
    info = lm.write_lexicon(str(data), str(model_dir), min_count=1, penalty=1.0, words_files=[str(wordlist)],
                            notice=str(tmp_path / "copyright"))
    assert (model_dir / "lexicon-NOTICE.txt").read_text().startswith("Copyright 2000")
    words = (model_dir / "lexicon.txt").read_text().split("\n")[:-1]
    assert words == sorted(set(counts) | {"recognizer", "recognizer's", "email"}) and "cloudy" in counts
    assert info["listed_only"] == 3 and info["from_text"] == len(counts) and info["words"] == len(counts) + 3
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert card.count("- lexicon.txt:") == 1 and "3 more common words" in card and f"`{wordlist}`" in card
    assert "lexicon-NOTICE.txt" in card
    # Without a word list again, the notice goes with it.
    lm.write_lexicon(str(data), str(model_dir), min_count=1, penalty=1.0)
    assert not (model_dir / "lexicon-NOTICE.txt").exists()
    with pytest.raises(SystemExit, match="wamerican"):
        lm.write_lexicon(str(data), str(model_dir), min_count=1, penalty=1.0, words_files=[str(tmp_path / "none")])
    # A model without an LM section gets none.
    shutil.copy(TINY / "config.yaml", model_dir / "config.yaml")
    with pytest.raises(SystemExit, match="no lm: section"):
        lm.write_lexicon(str(data), str(model_dir), min_count=1, penalty=1.0)
