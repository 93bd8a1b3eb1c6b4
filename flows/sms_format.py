"""Markdown to the plain text an SMS shows: what Telegram shows formatted
(bot.channels.telegram_format), without the marks.

Emphasis is dropped, a link becomes its words and its address ('the report
(https://...)'), list items and headings become lines, and lines the author wrapped inside a
paragraph are joined (in Markdown a single line break is a space; on a phone it would cut
the sentence). Whatever CommonMark reads as text, raw HTML included, stays as written.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")

# Addresses a phone can open; any other link target (javascript:, a relative path) is
# left out and only the link's words are kept.
_SHOWN_SCHEMES = ("http://", "https://", "mailto:", "tel:")


def markdown_to_plain(source: str) -> str:
    """The plain text of a Markdown message."""
    out: list[str] = []
    lists: list[list[int | None]] = []  # per open list: [next number] or [None] for bullets
    paragraph_end = None  # the source line after the last paragraph
    for token in _PARSER.parse(source):
        kind = token.type
        if kind == "paragraph_open" and token.map:
            paragraph_end = token.map[1]
        elif kind == "inline":
            out.append(_inline(token.children or []))
        elif kind in ("paragraph_close", "heading_close"):
            out.append("\n" if token.hidden else "\n\n")  # hidden: a tight list's item
        elif kind in ("bullet_list_open", "ordered_list_open"):
            if (
                not lists
                and out
                and out[-1] == "\n\n"
                and token.map
                and token.map[0] == paragraph_end
            ):
                out[-1] = "\n"  # a list written right under its lead-in line keeps to it
            start = token.attrGet("start") if kind == "ordered_list_open" else None
            lists.append([int(start or 1)] if kind == "ordered_list_open" else [None])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                out.append("\n")
        elif kind == "list_item_open":
            out.append(list_marker(lists, "-"))
        elif kind in ("fence", "code_block"):
            out.append(token.content.rstrip("\n") + "\n\n")
        elif kind == "hr":
            out.append("\n")
    return _tidy("".join(out))


def _inline(children: list[Token]) -> str:
    out: list[str] = []
    links: list[str | None] = []  # per open link: its address when it is shown
    words_at: list[int] = []  # where each open link's words start in `out`
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline", "image"):
            out.append(child.content)  # an image's content is its description
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            href = str(child.attrGet("href") or "")
            links.append(href if href.lower().startswith(_SHOWN_SCHEMES) else None)
            words_at.append(len(out))
        elif kind == "link_close":
            href, start = links.pop(), words_at.pop()
            words = "".join(out[start:])
            address = href.removeprefix("mailto:").removeprefix("tel:") if href else None
            if address and address != words:  # an autolink <https://...> is its address
                out.append(f" ({address})")
        # Emphasis, strikethrough and their closing marks carry no text of their own.
    return "".join(out)


def _tidy(text: str) -> str:
    """No trailing spaces on a line, at most one blank line in a row, none at the ends."""
    lines = [line.rstrip() for line in text.strip().split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


def list_marker(lists: list[list[int | None]], bullet: str = "•") -> str:
    """The mark opening a list item, indented by depth: the bullet, or the item's number
    (each list on the stack holds its next number, None for a bulleted list)."""
    indent = "  " * (len(lists) - 1)
    current = lists[-1] if lists else [None]
    if current[0] is None:
        return f"{indent}{bullet} "
    number = current[0]
    current[0] = number + 1
    return f"{indent}{number}. "
