"""Named normalisation patterns, each combined into one compiled expression.

Each pattern masks one kind of value that varies between occurrences of the
same failure mode. Every pattern is a named unit with a comment saying why it
exists and which false positive its shape avoids. The patterns of a family are
combined into a single alternation (first match wins, in the order listed),
so text is scanned once per family by the regular-expression engine in C.

Two families, because of where a value can lie:
- ``LINE_PATTERNS`` (quoted values) may contain spaces and run over the line;
- ``PATTERNS`` (numbers, ids, hosts, paths, ...) lie within one
  whitespace-separated token and run token by token, which lets the template
  code cache the result for the plain words that make up most of a message.

Invariants:
- every pattern is a pure function of the text it sees (no state), so a
  template never depends on arrival order or on which replica computed it;
- no pattern spans a newline (messages are templated one line at a time);
- the replacement is always the same placeholder, ``<*>``, so two patterns
  that fire on values of the same slot (``user 42`` / ``user 'bob'``) cannot
  split one failure mode in two;
- speed: every pattern *starts with a character class or literal* and checks
  its left boundary with a look-behind *after* that first character, so the
  engine rejects a non-matching alternative with one character test.
"""

from __future__ import annotations

import re

__all__ = [
    "CALENDAR_WORDS",
    "FUNCTION_WORDS",
    "KV_VALUE",
    "LINE_MASK",
    "LINE_PATTERNS",
    "MASK",
    "MASK_NAMED",
    "NAMING_KEYWORDS",
    "PATTERNS",
    "PLACEHOLDER",
]

PLACEHOLDER = "<*>"

# Characters that can be part of one "token" of a value: a value glued to one
# of these continues (gpt-4o-mini, blk_-160/8, user@host:22).
_TOK = r"[\w.:/@+#-]"
# Left boundary: the character before the first one is not a token character.
_LB = r"(?<![\w.:/@+#-].)"


#: Patterns applied to the whole line, before tokenising: their values may
#: contain spaces. (name, regex, why), in match priority order.
LINE_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "single_quoted",
        r"'(?<![\w\\]')[^'\n]{0,400}'(?!\w)",
        "quoted values are data (names, inputs, field values), never identity; an "
        "apostrophe after a letter (I'm, don't, users') does not open a quote",
    ),
    (
        "double_quoted",
        r'"[^"\n]{0,400}"',
        "double-quoted values, as in JSON fragments and repr() of strings",
    ),
    (
        "back_quoted",
        r"`[^`\n]{0,400}`",
        "back-quoted identifiers and code spans (`user_42`) in library messages",
    ),
)

#: Patterns applied to each whitespace-separated token. (name, regex, why), in
#: match priority order; the first that matches at a position wins.
PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "url",
        r"[a-zA-Z](?<![\w.].)[a-zA-Z0-9+.-]{1,15}://[^\s'\"<>)\]]+",
        "URLs carry hosts, ids and query strings; requiring `scheme://` keeps "
        "`key:value` words out",
    ),
    (
        "email",
        rf"[\w+-]{_LB}[\w.+-]*@[\w-]+(?:\.[\w-]+)+",
        "email addresses are personal data and vary per user",
    ),
    (
        "redacted_secret",
        r"[\w*-](?<![\w*-].)[\w-]*\*{3,}[\w*-]*",
        "API keys echoed back half-redacted (`sk-proj-AbCd****wXyZ`): the visible ends "
        "differ per key and per caller",
    ),
    (
        "uuid",
        rf"[0-9a-fA-F]{_LB}[0-9a-fA-F]{{7}}-?[0-9a-fA-F]{{4}}-?[0-9a-fA-F]{{4}}-?"
        r"[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?!\w)",
        "request / trace / object ids; before `number` so the dashes are consumed too",
    ),
    (
        "prefixed_id",
        rf"[a-z]{_LB}(?:(?<=o)rg|(?<=r)eq|(?<=c)hatcmpl|(?<=c)mpl|(?<=m)sg|(?<=c)all|"
        r"(?<=t)oolu|(?<=s)rvtoolu|(?<=r)esp|(?<=a)sst|(?<=t)hread|(?<=r)un|(?<=f)ile|"
        r"(?<=b)atch|(?<=f)tjob|(?<=s)k(?:-proj|-ant)?|(?<=p)roj|(?<=s)ess|(?<=e)vt|(?<=c)us|"
        r"(?<=s)ub|(?<=u)ser|(?<=s)pan|(?<=t)race|(?<=w)s|(?<=k)ey)"
        r"[-_](?:(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{4,}|[A-Za-z0-9]{16,})(?!\w)",
        "provider ids (org-…, req_…, chatcmpl-…, msg_…, call_…, toolu_…); the id part "
        "needs a digit or 16+ characters so tool names like file_search survive",
    ),
    (
        "iso_timestamp",
        rf"\d{_LB}\d{{3}}-\d{{2}}-\d{{2}}(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?"
        r"(?:Z|[+-]\d{2}:?\d{2})?)?",
        "ISO 8601 dates and date-times, with fraction and zone; one value, not six numbers",
    ),
    (
        "clock_time",
        r"\d(?<![\w.:]\d)\d?:\d{2}:\d{2}(?:[.,]\d+)?(?![\w:])",
        "times of day and elapsed clocks (`13:06:50.123`)",
    ),
    (
        "ipv4",
        r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?::\d{1,5})?(?!\w)",
        "IPv4 addresses with optional port; one value, not four numbers",
    ),
    (
        "ipv6",
        rf"[0-9a-fA-F:]{_LB}(?:[0-9a-fA-F]{{0,4}}:){{2,7}}[0-9a-fA-F]{{1,4}}(?![\w:])",
        "IPv6 addresses (after clock_time, which has the same shape for h:mm:ss)",
    ),
    (
        "host",
        rf"[a-zA-Z0-9]{_LB}[a-zA-Z0-9-]*\.(?:[a-zA-Z0-9-]+\.)*(?:com|net|org|io|ai|dev|app|"
        r"cloud|co|internal|local|localdomain|lan|svc|cluster|us|eu|uk|de|fr|jp)"
        r"(?::\d{1,5})?(?![\w-])(?!\.\w)",
        "host names end in a known suffix; a bare dotted name (module.func, "
        "org.apache.Class) is code, not a host, and stays literal",
    ),
    (
        "unix_path",
        r"[/~.](?<![\w.:/~].)(?:(?<=/)[\w.@%+~-]+(?:/[\w.@%+~-]+)+|(?<=[~.])\.?(?:/[\w.@%+~-]+){2,})/?",
        "file system paths of two or more segments; they differ per deployment",
    ),
    (
        "windows_path",
        rf"[A-Za-z]{_LB}:\\[^\s'\"]+",
        "Windows paths (`C:\\app\\x.py`)",
    ),
    (
        "hex",
        rf"[0-9a-fA-F]{_LB}(?:(?<=0)[xX][0-9a-fA-F]+|(?=[a-fA-F]*\d)[0-9a-fA-F]{{7,}})(?!\w)",
        "addresses, digests and hex ids; needs a digit so an English word like "
        "`acceded` is never masked",
    ),
    (
        "duration",
        r"[-+\d](?<![\w.].)(?:(?<=\d)|\d)\d*(?:\.\d+)?(?:ms|us|µs|ns|s|sec|secs|seconds?|mins?|minutes?|"
        r"h|hrs?|hours?|days?)(?!\w)",
        "retry-after hints and latencies (`2.5s`, `300ms`): the unit belongs to the value",
    ),
    (
        "number",
        r"[-+\d](?<![\w.].)(?:(?<=\d)|\d)\d*(?:[.,]\d+)*(?:[eE][-+]?\d+)?%?(?!\w)",
        "counts, sizes, limits, ports, line numbers; never inside a word",
    ),
    (
        "digit_token",
        rf"{_TOK}{_LB}(?:(?<=\d)|[A-Za-z_.:/@+#-]*\d){_TOK}*(?<![.:-])",
        "a token holding a digit anywhere (gpt-4o, blk_-1608, node7, v2.1.0): words of a "
        "fixed message almost never hold digits, values very often do; trailing "
        "sentence punctuation is left outside",
    ),
    (
        "random_token",
        rf"[A-Za-z]{_LB}(?=[A-Za-z]{{19,}}(?![\w.:/@+#-]))(?:[A-Z]*[a-z]+[A-Z]){{4}}[A-Za-z]*",
        "long ids without digits (base62 keys): four or more lower-to-upper switches in "
        "20+ letters; CamelCase class names switch far less often",
    ),
)

#: the line patterns as one compiled alternation
LINE_MASK: re.Pattern[str] = re.compile("|".join(f"(?:{rx})" for _, rx, _ in LINE_PATTERNS))

#: the token patterns as one compiled alternation (non-capturing, for speed)
MASK: re.Pattern[str] = re.compile("|".join(f"(?:{rx})" for _, rx, _ in PATTERNS))

#: both families with one named group per pattern, to explain a template
MASK_NAMED: re.Pattern[str] = re.compile(
    "|".join(f"(?P<{n}>{rx})" for n, rx, _ in LINE_PATTERNS + PATTERNS)
)

#: the value of key=value: the key is structure, the value is data. Starts
#: with the literal "=" so the engine finds candidates by a fast scan.
KV_VALUE: re.Pattern[str] = re.compile(r"=(?<=[\w\]]=)[^\s=,;()\[\]{}'\"<]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words after which the next token names something: a value, not structure
#: ("user alice", "model: foo", "named John Smith").
NAMING_KEYWORDS = _words(
    """
    user username userid uid named name called account customer tenant org
    organization organisation project deployment model session host hostname file
    filename table column bucket queue topic channel email workspace team region zone
    instance container pod branch commit owner dataset collection document sku order
    invoice ticket
    """
)
# Left out on purpose: words that are also logger / component names or verbs in
# log lines ("db: slow query", "worker 3 started", "index forbidden").

#: Words that may follow a naming keyword in a fixed message ("user not
#: found", "model is overloaded", "file does not exist", "user id"): kept.
FUNCTION_WORDS = _words(
    """
    a an the this that these those to from in on at of for with by and or as if is was are
    were be been being has have had does did do not no nor can cannot could should would
    will may might must shall already still now yet never also only just then than so too
    very failed found missing exist exists exceeded denied refused invalid unknown required
    expired disabled deleted locked busy unavailable overloaded full empty id ids key name
    names limit quota access error errors request requests
    """
)

#: Month and weekday names: masked when a number follows ("Nov 27 13:06:50",
#: "Wed, 21 Oct 2015"), so a log template does not split by month.
CALENDAR_WORDS = frozenset(
    [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Sept",
        "Oct",
        "Nov",
        "Dec",
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
)
