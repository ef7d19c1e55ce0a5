"""Telegram-style parsing of `parse_mode` text into plain text plus entities."""

from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass, field
from typing import Any

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"([a-zA-Z][a-zA-Z0-9-]*)")
_ATTR = re.compile(r"""\s*([a-zA-Z_][\w-]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")


class ParseError(ValueError):
    """The text can't be parsed; str(exc) is Telegram's message after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (Telegram's unit for entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    offset: int
    attrs: dict[str, str]
    byte_offset: int
    extra: dict[str, Any] = field(default_factory=dict)


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


def parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML; return (plain text, entities) or raise ParseError."""
    out: list[str] = []
    pos16 = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c == "<":
            end = src.find(">", i)
            if end < 0:
                raise ParseError(f"Unclosed start tag at byte offset {_byte_offset(src, i)}")
            inner = src[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise ParseError(f"Unexpected end tag at byte offset {_byte_offset(src, i)}")
                top = stack.pop()
                if name and name != top.tag:
                    raise ParseError(
                        f"Unmatched end tag at byte offset {_byte_offset(src, i)}, "
                        f'expected "</{top.tag}>", found "</{name}>"'
                    )
                _close(top, pos16, stack, entities)
            else:
                m = _TAG_NAME.match(inner)
                if not m:
                    raise ParseError(f'Unsupported start tag "{inner}" at byte offset {_byte_offset(src, i)}')
                name = m.group(1).lower()
                if name not in _TAGS:
                    raise ParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, i)}')
                attrs: dict[str, str] = {}
                rest = inner[m.end() :].rstrip().rstrip("/")
                for am in _ATTR.finditer(rest):
                    if not am.group(1):
                        continue
                    value = am.group(2) or ""
                    if value[:1] in "\"'":
                        value = value[1:-1]
                    attrs[am.group(1).lower()] = _html.unescape(value)
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise ParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(src, i)}'
                    )
                stack.append(_Open(name, pos16, attrs, _byte_offset(src, i)))
            i = end + 1
            continue
        if c == "&":
            m = _ENTITY.match(src, i)
            if m:
                body = m.group(1)
                ch: str | None
                if body.startswith(("#x", "#X")):
                    ch = chr(int(body[2:], 16))
                elif body.startswith("#"):
                    ch = chr(int(body[1:]))
                else:
                    ch = _NAMED.get(body.lower())
                if ch is not None:
                    out.append(ch)
                    pos16 += utf16_len(ch)
                    i = m.end()
                    continue
        out.append(c)
        pos16 += utf16_len(c)
        i += 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close(top: _Open, pos16: int, stack: list[_Open], entities: list[dict[str, Any]]) -> None:
    length = pos16 - top.offset
    kind = _TAGS[top.tag]
    if top.tag == "code" and stack and stack[-1].tag == "pre":
        lang = top.attrs.get("class", "")
        if lang.startswith("language-"):
            stack[-1].extra["language"] = lang[len("language-") :]
            return
    if length <= 0:
        return
    entity: dict[str, Any] = {"type": kind, "offset": top.offset, "length": length}
    if kind == "text_link":
        href = top.attrs.get("href")
        if not href:
            return
        if href.startswith("tg://user?id="):
            entity = {"type": "text_mention", "offset": top.offset, "length": length}
            entity["user"] = {"id": int(href.split("=", 1)[1] or 0), "is_bot": False, "first_name": "?"}
        else:
            entity["url"] = href
    elif kind == "pre" and "language" in top.extra:
        entity["language"] = top.extra["language"]
    elif kind == "blockquote" and "expandable" in top.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = top.attrs.get("emoji-id", "")
    entities.append(entity)


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def check_markdown_v2(src: str) -> str:
    """Minimal MarkdownV2 check: reserved characters outside markup must be escaped.

    Returns the text with escapes and paired markers removed (entities are not computed).
    """
    out: list[str] = []
    i = 0
    in_code = False
    while i < len(src):
        c = src[i]
        if c == "\\" and i + 1 < len(src):
            out.append(src[i + 1])
            i += 2
            continue
        if c == "`":
            in_code = not in_code
            i += 1
            continue
        if in_code:
            out.append(c)
            i += 1
            continue
        if c in "*_~|":
            i += 1
            continue
        if c == "[":
            close = src.find("](", i)
            paren = src.find(")", close) if close >= 0 else -1
            if close < 0 or paren < 0:
                raise ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
            out.append(src[i + 1 : close])
            i = paren + 1
            continue
        if c == ">" and (i == 0 or src[i - 1] == "\n"):
            i += 1
            continue
        if c in _MDV2_RESERVED:
            raise ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        out.append(c)
        i += 1
    if in_code:
        raise ParseError(f"Can't find end of Code entity at byte offset {len(src.encode())}")
    return "".join(out)
