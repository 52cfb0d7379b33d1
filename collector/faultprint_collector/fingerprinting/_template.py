"""Message templates: pattern masking, then token-level template inference.

``template_of(message)`` turns one message into its template:

1. ``LINE_PATTERNS`` mask quoted values and ``KV_VALUE`` the values of
   ``key=value`` over the whole line (they may contain spaces);
2. each whitespace token goes through ``PATTERNS`` (numbers, ids, hosts,
   paths, any token holding a digit such as ``gpt-4o`` or ``blk_-1608``,
   random-looking tokens);
3. token inference by *position*: the token after a naming keyword
   (``user alice``, ``model: foo``, ``named John Smith``) is a value unless it
   is a function word (``user not found`` keeps ``not``); a month or weekday
   name followed by a number is part of a date;
4. runs of adjacent placeholders collapse to one, so a value of varying
   word count (a name, a list, a date) is still one slot.

Unlike an online clusterer (Drain and friends) nothing here looks at other
messages: the template is a pure function of the message, so every
collector replica, in any arrival order, computes the same one. The price is
that a variable plain word in a position no rule recognises stays literal;
``bench/fingerprint_quality.py`` measures what that costs.

Only the first line is used, at most ``MAX_TOKENS`` tokens of it: identity is
in the head of a message, user content in its tail.

Speed: a message is mostly tokens that recur across messages (words, model
names, hosts), so the masked form of each token is memoised in a bounded
cache looked up from C; bare numbers are decided by string methods; only new
tokens reach the regular-expression engine, and tokens of value characters
holding a digit take the ``digit_token`` rule directly (one value).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import cast

from ._patterns import (
    CALENDAR_WORDS,
    FUNCTION_WORDS,
    KV_VALUE,
    LINE_MASK,
    MASK,
    MASK_NAMED,
    NAMING_KEYWORDS,
    PLACEHOLDER,
)

__all__ = ["MAX_LINE", "MAX_TOKENS", "clear_caches", "masked_values", "template_of"]

#: a template keeps at most this many tokens of the first line: identity is in
#: the head of a message, user content in its tail. Counted in tokens, not
#: characters, so a longer id early in a message cannot move the cut.
MAX_TOKENS = 40
#: bound on the text the patterns scan (far beyond MAX_TOKENS of normal text)
MAX_LINE = 4000

_COLLAPSE = re.compile(r"<\*>(?:[ \t,|]*<\*>)+")
_DIGIT = re.compile(r"\d")
_NUMBER_TAIL = ".,;:!?)]}'\""
_VALUE_TOKEN = re.compile(
    r"([\"'`(\[{<]*)(?:[\w.:/@+#-]|<\*>)*?\d(?:[\w.:/@+#-]|<\*>)*?([\"'`)\]}>.,;:!?]*)"
)
# Stripped from token edges before a positional rule looks at the word.
_EDGE = "\"'`.,;:!?()[]{}<>"
_CLAUSE_END = (".", ";", "!", "?")

# Tokens (as written) that trigger a positional rule; checked with one
# set operation so messages without any of them skip the rule entirely.
_TRIGGERS = frozenset(
    v for w in NAMING_KEYWORDS for c in (w, w.capitalize(), w.upper()) for v in (c, c + ":")
) | frozenset(v for w in CALENDAR_WORDS for v in (w, w + ",", w + ".", "[" + w, "(" + w))

_CACHE_MAX = 100_000
_token_cache: dict[str, str] = {}


# Line boundaries: CR and LF. (Other separators str.splitlines() knows are
# whitespace to str.split(), so inside a line they only separate tokens.)
_EOL = re.compile("[\n\r]")
_LEADING = re.compile(r"\s*")


def _head(message: str) -> str:
    """The first non-blank line, at most MAX_LINE characters; linear in its length only."""
    if len(message) <= MAX_LINE and "\n" not in message and "\r" not in message:
        return message.strip()  # the common case: one short line
    start = _LEADING.match(message).end()  # type: ignore[union-attr]
    eol = _EOL.search(message, start, start + MAX_LINE)
    end = eol.start() if eol is not None else start + MAX_LINE
    return message[start:end].rstrip()


def _mask_token(tok: str) -> str:
    """The masked form of one token (``PATTERNS``), memoised in a bounded cache."""
    # Bare numbers first ("30000", "1500.", "0)"): the commonest value, decided
    # by str methods without the expression engine. Same result as `number`.
    core = tok.rstrip(_NUMBER_TAIL)
    if core.isdigit() and core.isascii():
        return PLACEHOLDER + tok[len(core) :]
    if _DIGIT.search(tok) is not None:
        # Shortcut for the `digit_token` pattern, which would consume such a
        # token whole: value characters only (between edge punctuation),
        # holding a digit, is one value.
        m = _VALUE_TOKEN.fullmatch(tok)
        masked = f"{m[1]}<*>{m[2]}" if m is not None else MASK.sub(PLACEHOLDER, tok)
    else:
        masked = MASK.sub(PLACEHOLDER, tok)
    # Tokens recur (words, model names, hosts): memoise. A full cache is
    # dropped, not evicted entry by entry: cheap, and still bounded.
    if len(_token_cache) >= _CACHE_MAX:
        _token_cache.clear()
    _token_cache[tok] = masked
    return masked


def _replace_core(tok: str) -> str:
    core = tok.strip(_EDGE)
    if not core:
        return tok
    start = tok.find(core)
    return tok[:start] + PLACEHOLDER + tok[start + len(core) :]


def _trigger_positions(out: list[str]) -> list[int]:
    # set intersection and list.index run in C; a Python loop over every
    # token would cost more than the rule itself
    found = []
    for word in _TRIGGERS.intersection(out):
        i = -1
        try:
            while True:
                i = out.index(word, i + 1)
                found.append(i)
        except ValueError:
            pass
    found.sort()
    return found


def _positional(out: list[str]) -> None:
    """Mask values identified by their position (after keywords, in dates)."""
    n = len(out)
    done = -1  # tokens up to here were consumed by a multi-word value
    for i in _trigger_positions(out):
        if i <= done or i + 1 >= n:
            continue
        tok = out[i]
        nxt = out[i + 1]
        if tok.strip("[(,.") in CALENDAR_WORDS:
            if PLACEHOLDER in nxt or nxt.rstrip(",.") in CALENDAR_WORDS:
                out[i] = _replace_core(tok)
            continue
        core = nxt.strip(_EDGE)
        low = core.lower()
        if not core or PLACEHOLDER in nxt or low in FUNCTION_WORDS or low in NAMING_KEYWORDS:
            # "customer named Bob": the later keyword names the value
            continue
        out[i + 1] = _replace_core(nxt)
        # a capitalised value continues over capitalised words: "named John Smith"
        j = i + 2
        while core[0].isupper() and j < n and not out[j - 1].endswith((",", *_CLAUSE_END)):
            c = out[j].strip(_EDGE)
            if not (c and c[0].isupper() and c.isalpha()) or c.lower() in FUNCTION_WORDS:
                break
            out[j] = _replace_core(out[j])
            j += 1
        done = j - 1


# Every ASCII digit becomes 0 before templating. No rule looks at digit
# values, only at where digits are, so the template is unchanged; but lines
# and tokens that differ only in numbers now meet in the caches.
# Done on UTF-8 bytes: bytes.translate is a table lookup, several times faster
# than str.translate, and safe because an ASCII digit's byte never occurs
# inside a multi-byte character (surrogatepass round-trips lone surrogates).
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")


def _zero_digits(line: str) -> str:
    return (
        line.encode("utf-8", "surrogatepass")
        .translate(_ZERO_DIGITS)
        .decode("utf-8", "surrogatepass")
    )


def template_of(message: str) -> str:
    """Return the template of ``message``, every value replaced by ``<*>``.

    Deterministic and independent of any other message. Only the first
    non-blank line, at most ``MAX_TOKENS`` tokens, is used.
    """
    # Whole messages recur too (one error, many calls): a hit skips finding
    # the head line and zeroing its digits. Bounded, dropped whole when full.
    hit = _message_cache.get(message)
    if hit is None:
        if len(_message_cache) >= _MESSAGE_CACHE_MAX:
            _message_cache.clear()
        hit = _message_cache[message] = _template(_zero_digits(_head(message)))
    return hit


_MESSAGE_CACHE_MAX = 16384
_message_cache: dict[str, str] = {}


def clear_caches() -> None:
    """Forget memoised templates and tokens (benchmarks, tests)."""
    _template.cache_clear()
    _token_cache.clear()
    _message_cache.clear()


@lru_cache(maxsize=16384)
def _template(line: str) -> str:
    if "'" in line or '"' in line or "`" in line:
        line = LINE_MASK.sub(PLACEHOLDER, line)
    if "=" in line:
        line = KV_VALUE.sub("=" + PLACEHOLDER, line)
    tokens = line.split(None, MAX_TOKENS)[:MAX_TOKENS]
    # cache lookups in C (map); only the misses run Python code
    found: list[str | None] = list(map(_token_cache.get, tokens))
    if None in found:
        i = found.index(None)
        while True:
            found[i] = _mask_token(tokens[i])
            try:
                i = found.index(None, i + 1)
            except ValueError:
                break
    out = cast(list[str], found)
    if not _TRIGGERS.isdisjoint(out):
        _positional(out)
    result = " ".join(out)
    if PLACEHOLDER in result:
        result = _COLLAPSE.sub(PLACEHOLDER, result)
    return result


def masked_values(message: str) -> list[tuple[str, str]]:
    """Which named pattern masked which value, for grouping explanations (slow path)."""
    line = _head(message)
    return [(m.lastgroup or "?", m.group()) for m in MASK_NAMED.finditer(line)]
