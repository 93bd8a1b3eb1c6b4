"""Markdown to the small HTML subset Telegram accepts (parse_mode HTML).

Telegram knows b, i, s, u, code, pre, a, blockquote and nothing else: no paragraphs, lists
or headings. Those become plain lines, every other character is escaped, and raw HTML in
the source is shown as text, so an organiser's message can never break the parse.
"""

from __future__ import annotations

from html import escape

from markdown_it import MarkdownIt
from markdown_it.token import Token

from flows.sms_format import list_marker

_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")

# Inline markup that maps one to one onto a Telegram tag.
_INLINE_TAGS = {"strong": "b", "em": "i", "s": "s"}
# Links Telegram opens; anything else (javascript:, data:) is shown as plain text.
_SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:")


# Block tokens that become fixed text.
_BLOCK_TEXT = {
    "heading_open": "<b>",
    "heading_close": "</b>\n\n",
    "blockquote_open": "<blockquote>",
    "hr": "——————\n\n",
}
_LIST_TOKENS = frozenset(
    ("bullet_list_open", "ordered_list_open", "bullet_list_close", "ordered_list_close")
)


def markdown_to_html(source: str) -> str:
    """Telegram-safe HTML for a Markdown message."""
    out: list[str] = []
    lists: list[list[int | None]] = []  # per open list: [next number] or [None] for bullets
    for token in _PARSER.parse(source):
        kind = token.type
        text = _BLOCK_TEXT.get(kind)
        if text is not None:
            out.append(text)
        elif kind in _LIST_TOKENS:
            _list(token, lists, out)
        elif kind == "list_item_open":
            out.append(list_marker(lists))
        else:
            _block(token, out)
    _strip_trailing_newlines(out)
    return "".join(out)


def _list(token: Token, lists: list[list[int | None]], out: list[str]) -> None:
    """A list opens (numbered from its start, or bulleted) or closes."""
    if token.type == "bullet_list_open":
        lists.append([None])
    elif token.type == "ordered_list_open":
        lists.append([int(token.attrGet("start") or 1)])
    else:
        lists.pop()
        if not lists:
            out.append("\n")


def _block(token: Token, out: list[str]) -> None:
    kind = token.type
    if kind == "inline":
        out.append(_inline(token.children or []))
    elif kind == "paragraph_close":
        out.append("\n" if token.hidden else "\n\n")  # hidden: a tight list item
    elif kind == "blockquote_close":
        _strip_trailing_newlines(out)
        out.append("</blockquote>\n\n")
    elif kind in ("fence", "code_block"):
        out.append(_code_block(token))


def _code_block(token: Token) -> str:
    code = escape(token.content.rstrip("\n"), quote=False)
    language = (token.info or "").split()[0] if token.info else ""
    if language:
        return f'<pre><code class="language-{escape(language)}">{code}</code></pre>\n\n'
    return f"<pre>{code}</pre>\n\n"


def _inline(children: list[Token]) -> str:
    out: list[str] = []
    links: list[bool] = []  # whether each open link became an <a> (else its text stays plain)
    for child in children:
        kind = child.type
        if kind == "text":
            out.append(escape(child.content, quote=False))
        elif kind == "code_inline":
            out.append(f"<code>{escape(child.content, quote=False)}</code>")
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind.endswith("_open") and kind[:-5] in _INLINE_TAGS:
            out.append(f"<{_INLINE_TAGS[kind[:-5]]}>")
        elif kind.endswith("_close") and kind[:-6] in _INLINE_TAGS:
            out.append(f"</{_INLINE_TAGS[kind[:-6]]}>")
        elif kind == "link_open":
            href = str(child.attrGet("href") or "")
            safe = href.lower().startswith(_SAFE_SCHEMES)
            links.append(safe)
            if safe:
                out.append(f'<a href="{escape(href, quote=True)}">')
        elif kind == "link_close":
            if links.pop():
                out.append("</a>")
        elif kind == "image":
            out.append(escape(child.content, quote=False))
        else:  # html_inline cannot occur (html off); anything new is shown as its text
            out.append(escape(child.content, quote=False))
    return "".join(out)


def _strip_trailing_newlines(out: list[str]) -> None:
    while out and out[-1].endswith("\n"):
        stripped = out[-1].rstrip("\n")
        if stripped:
            out[-1] = stripped
            return
        out.pop()
