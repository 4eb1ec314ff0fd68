"""Deterministic text of the offline model: tokenization and answers written without tools.

Nothing here is random or time-dependent, so a run can be replayed and asserted on byte for byte.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

__all__ = ["apply_stop", "count_tokens", "reply_without_tools", "split_tokens"]

_WORD_RE = re.compile(r"\S+")
_STREAM_TOKEN_RE = re.compile(r"\s*\S+")
_NAME_STATEMENT_RE = re.compile(
    r"(?i:\bmy name is|\bcall me|\bi am called)\s+([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?|[a-z][\w'-]*)"
)
_NAME_QUESTION_RE = re.compile(
    r"\b(?:what(?:'s|\s+is)\s+my\s+name|do\s+you\s+(?:know|remember)\s+my\s+name|who\s+am\s+i)\b", re.I
)
_GREETING_RE = re.compile(r"^\s*(?:hi|hello|hey|hiya|greetings|good\s+(?:morning|afternoon|evening))\b[\s!.,]*", re.I)
_HOW_ARE_YOU_RE = re.compile(r"\bhow\s+are\s+you\b", re.I)
_THANKS_RE = re.compile(r"^\s*(?:thanks|thank\s+you)\b", re.I)
_HAIKU_RE = re.compile(r"\b(?:(\d+|two|three|four)\s+)?haikus?\b", re.I)
_POEM_RE = re.compile(r"\b(?:poem|verse|rhyme|limerick)\b", re.I)
_WRITE_RE = re.compile(r"^\s*(?:please\s+)?(?:write|draft|compose|create|give\s+me|tell\s+me)\b", re.I)
_QUESTION_RE = re.compile(r"\?\s*$|^\s*(?:what|why|how|when|where|who|which|can|could|should|is|are|do|does)\b", re.I)
_TOPIC_RE = re.compile(r"\b(?:about|on|regarding|concerning|of)\s+(.+?)\s*[.?!]*\s*$", re.I | re.S)
_FILLER = frozenset(
    re.findall(
        r"\w+",
        "a an and are brief can compose could create describe do does draft explain for give how i in is"
        " me my of or please short should some tell the to what why with would write you",
    )
)
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4}


def split_tokens(text: str) -> list[str]:
    """Word-ish stream tokens: each keeps its leading whitespace, so joining them gives ``text`` back."""
    tokens: list[str] = _STREAM_TOKEN_RE.findall(text)
    if not tokens:
        return [text] if text else []
    tail = text[sum(len(t) for t in tokens) :]
    if tail:
        tokens[-1] += tail
    return tokens


def count_tokens(text: str) -> int:
    """A provider-free token estimate: whitespace-separated words."""
    return len(_WORD_RE.findall(text))


def apply_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; returns the text and whether it was cut."""
    cut = min((i for s in stop or () if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def reply_without_tools(request: str, history: Sequence[str]) -> str:
    """The answer to the latest user message ``request``; ``history`` holds the earlier user messages."""
    text = " ".join(request.split())
    if not text:
        return "I did not receive any text. What would you like me to do?"
    if _NAME_QUESTION_RE.search(text):
        name = _remembered_name(history)
        return f"Your name is {name}." if name else 'I don\'t know your name yet. You can tell me: "my name is ...".'
    if match := _NAME_STATEMENT_RE.search(text):
        return f"Nice to meet you, {match.group(1)}! How can I help you today?"
    if match := _HAIKU_RE.search(text):
        return _haikus(_topic(text, default="the season"), _haiku_count(match.group(1)))
    if _POEM_RE.search(text):
        return _poem(_topic(text, default="the quiet hours"))
    if _THANKS_RE.search(text):
        return "You're welcome! Let me know if there is anything else I can do."
    if _HOW_ARE_YOU_RE.search(text):
        return "I'm doing well, thank you for asking. How can I help you today?"
    if _GREETING_RE.fullmatch(text) or (_GREETING_RE.match(text) and len(text.split()) <= 4):
        return "Hello! How can I help you today?"
    topic = _topic(text, default="this")
    if _WRITE_RE.search(text):
        return (
            f"Here is a short piece about {topic}.\n\n"
            f"{_capitalize(topic)} is worth a closer look. Start with what is known for certain, "
            f"then look at the details that change the outcome. In short: understand {topic}, "
            "measure what matters, and act on what you learn."
        )
    if _QUESTION_RE.search(text):
        return (
            f"You asked about {topic}. The short answer: it depends on the details, so start from the key facts, "
            "check them against a reliable source, and refine from there. Ask a follow-up for more depth."
        )
    return f'You said: "{_clip(text, 160)}". I understand you are interested in {topic}. How can I help with it?'


def _remembered_name(history: Sequence[str]) -> str | None:
    for message in reversed(history):
        if match := _NAME_STATEMENT_RE.search(message):
            return match.group(1)
    return None


def _topic(text: str, *, default: str) -> str:
    if match := _TOPIC_RE.search(text):
        topic = match.group(1)
    else:
        words = [w for w in re.findall(r"[\w'-]+", text) if w.lower() not in _FILLER]
        topic = " ".join(words[-6:])
    topic = _clip(topic.strip(" \"'`"), 80)
    return topic or default


def _haiku_count(word: str | None) -> int:
    if not word:
        return 1
    count = int(word) if word.isdigit() else _NUMBER_WORDS.get(word.lower(), 1)
    return max(1, min(count, 5))


def _haikus(topic: str, count: int) -> str:
    variants = (
        (f"Soft {topic} at dawn", "whispers to the waiting earth", f"the day breathes with {topic}"),
        (f"Quiet {topic} returns", "the old street remembers it", f"{topic} settles, then stills"),
        ("Under a grey sky", f"{topic} writes its name on the glass", "a slow, patient song"),
    )
    start = zlib.crc32(topic.encode()) % len(variants)
    poems = []
    for i in range(count):
        lines = variants[(start + i) % len(variants)]
        poems.append("\n".join(_capitalize(line) for line in lines))
    return "\n\n".join(poems)


def _poem(topic: str) -> str:
    return "\n".join(
        (
            f"I went looking for {topic}",
            "and found it where the light gets thin,",
            "a small thing, patient, waiting there,",
            f"until I let {topic} in.",
        )
    )


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
