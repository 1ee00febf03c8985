from lasr_train.text import normalize_text
from lasr_train.tokenizer import SPECIALS, Tokenizer, train_tokenizer

TEXTS = [normalize_text(s) for s in [
    "The quick brown fox jumps over the lazy dog.", "As you know and as I have given you proof",
    "I have the greatest admiration in the world", "for one whose work for humanity has won such recognition",
    "Printing in the only sense with which we are at present concerned", "differs from most if not all the arts",
    "she sells sea shells by the sea shore", "peter piper picked a peck of pickled peppers",
]] * 4


def test_sentencepiece_round_trip(tmp_path):
    tok = train_tokenizer(TEXTS, "sentencepiece", 60, tmp_path)
    assert tok.size == 60 and tok.pieces[:3] == SPECIALS
    lines = (tmp_path / "tokens.txt").read_text().splitlines()
    assert lines == tok.pieces
    for s in TEXTS[:8] + ["the lazy peppers shore"]:
        ids = tok.encode(s)
        assert all(3 <= i < 60 for i in ids)
        assert tok.decode(ids) == s
    again = Tokenizer.load(tmp_path)
    assert again.encode(TEXTS[0]) == tok.encode(TEXTS[0])
    assert tok.decode([0, 1] + tok.encode("the dog") + [1]) == "the dog"


def test_characters_round_trip(tmp_path):
    tok = train_tokenizer(TEXTS, "characters", 31, tmp_path)
    assert tok.size == 31 and not (tmp_path / "sentencepiece.model").exists()
    s = "don't stop the quick fox"
    ids = tok.encode(s)
    assert tok.decode(ids) == s
    assert tok.pieces[ids[0]] == "\u2581"
    assert Tokenizer.load(tmp_path).decode(ids) == s
