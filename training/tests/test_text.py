from lasr_train.text import normalize_text, number_to_words, ordinal_to_words


def test_case_and_punctuation():
    assert normalize_text("Hello, World!  How are you?") == "hello world how are you"
    assert normalize_text('He said: "Stop." (quietly)') == "he said stop quietly"
    assert normalize_text("AS YOU KNOW") == "as you know"


def test_hyphens_and_dashes_become_spaces():
    assert normalize_text("well-known self-respect") == "well known self respect"
    assert normalize_text("yes\u2014no \u2013 maybe") == "yes no maybe"


def test_apostrophes():
    assert normalize_text("Don't") == "don't"
    assert normalize_text("it\u2019s the boys' toys") == "it's the boys toys"
    assert normalize_text("'Tis 'quoted'") == "tis quoted"


def test_numbers():
    assert number_to_words(0) == "zero"
    assert number_to_words(13) == "thirteen"
    assert number_to_words(45) == "forty five"
    assert number_to_words(100) == "one hundred"
    assert number_to_words(1234) == "one thousand two hundred thirty four"
    assert number_to_words(2000000) == "two million"
    assert ordinal_to_words(1) == "first"
    assert ordinal_to_words(22) == "twenty second"
    assert ordinal_to_words(40) == "fortieth"
    assert normalize_text("3 cats and 12 dogs") == "three cats and twelve dogs"
    assert normalize_text("in 1984 and 1900") == "in nineteen eighty four and nineteen hundred"
    assert normalize_text("the 21st of May") == "the twenty first of may"
    assert normalize_text("1,500 men") == "one thousand five hundred men"
    assert normalize_text("3.5") == "three point five"


def test_other_characters_dropped():
    assert normalize_text("caf\u00e9 na\u00efve") == "caf nave"
    assert normalize_text("a/b") == "a b"
    assert normalize_text("  ") == ""
