"""Text normalization shared by training and evaluation (`normalize_text`).

Rules, applied in this order (training/README.md lists them too):
1. Unicode apostrophes (’ ‘ ʼ) become ASCII `'`; the text is lowercased.
2. Numbers are spelled out: `1,234` -> "one thousand two hundred thirty four",
   `3.5` -> "three point five", `1st`/`2nd`/`3rd`/`4th` -> "first"... (ordinals),
   `1990s` -> "nineteen nineties" is NOT attempted: digits followed by letters
   other than an ordinal suffix are spelled out as a cardinal and the letters kept.
   Four-digit numbers 1100-1999 and 2010-2099 without a comma are read as years
   ("nineteen eighty four"); other numbers as cardinals.
3. Hyphens and dashes (- – —) become spaces.
4. Every character other than a-z, apostrophe and space is dropped (other
   punctuation disappears without leaving a space, except that characters in
   `_SPACE_LIKE` such as `/` and `.` between words become spaces).
5. Apostrophes not between two letters are dropped ("'tis" -> "tis",
   "boys'" -> "boys", "don't" stays).
6. Runs of spaces collapse to one; leading/trailing space removed.
"""
from __future__ import annotations

import re

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def _under_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        if n % 10:
            words.append(_ONES[n % 10])
    elif n > 0 or not words:
        words.append(_ONES[n])
    return words


def number_to_words(n: int) -> str:
    """Cardinal: 0 -> 'zero', 1234 -> 'one thousand two hundred thirty four'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n == 0:
        return "zero"
    words = []
    for value, name in _SCALES:
        if n >= value:
            words += _under_thousand(n // value) + [name]
            n %= value
    if n:
        words += _under_thousand(n)
    return " ".join(words)


def year_to_words(n: int) -> str:
    """1984 -> 'nineteen eighty four', 1900 -> 'nineteen hundred', 2015 -> 'twenty fifteen'."""
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    if lo < 10:
        return number_to_words(hi) + " oh " + _ONES[lo]
    return number_to_words(hi) + " " + number_to_words(lo)


def ordinal_to_words(n: int) -> str:
    """1 -> 'first', 22 -> 'twenty second', 100 -> 'one hundredth'."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORD_IRREGULAR:
        words[-1] = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


_NUM_RE = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?")


def _spell(m: re.Match) -> str:
    tok = m.group(0)
    suffix = ""
    for s in ("st", "nd", "rd", "th"):
        if tok.endswith(s):
            tok, suffix = tok[: -len(s)], s
            break
    tok = tok.rstrip(",")
    trailing_comma = m.group(0)[len(tok):len(tok) + 1] == "," and not suffix
    if "." in tok:
        whole, frac = tok.split(".", 1)
        out = number_to_words(int(whole.replace(",", "") or 0)) + " point " + " ".join(_ONES[int(d)] for d in frac)
    elif suffix:
        out = ordinal_to_words(int(tok.replace(",", "")))
    elif "," not in tok and len(tok) == 4 and (1100 <= int(tok) <= 1999 or 2010 <= int(tok) <= 2099):
        out = year_to_words(int(tok))
    else:
        out = number_to_words(int(tok.replace(",", "")))
    return " " + out + (" ," if trailing_comma else " ")


_APOS = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_DASHES = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014\u2015]")
_SPACE_LIKE = re.compile(r"[/\\.,;:!?()\[\]{}\"_|+=*&<>~\t\n\r]")
_DROP = re.compile(r"[^a-z' ]")
_BAD_APOS = re.compile(r"(?<![a-z])'|'(?![a-z])")
_SPACES = re.compile(r" +")


def normalize_text(text: str) -> str:
    """Normalize a transcript for training and scoring (rules in the module docstring)."""
    t = text.translate(_APOS).lower()
    t = _NUM_RE.sub(_spell, t)
    t = _DASHES.sub(" ", t)
    t = _SPACE_LIKE.sub(" ", t)
    t = _DROP.sub("", t)
    t = _BAD_APOS.sub("", t)
    return _SPACES.sub(" ", t).strip()
