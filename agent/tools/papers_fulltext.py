"""A paper's HTML (arXiv's LaTeXML rendering or ar5iv's) as title, abstract and numbered
sections in Markdown, for ``hf_papers read_paper``.

BeautifulSoup and markdownify are imported inside the functions: most sessions never read
a paper, and the tool module is imported at start.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_DROP = ("script", "style", "noscript", "nav", "header", "footer", "button", "svg", "img", "picture")
_DROP_CLASSES = frozenset(("ltx_page_header", "ltx_page_footer", "ltx_page_logo", "package-alerts", "ltx_TOC",
                 "ltx_role_affiliationtext", "ltx_contact", "ltx_role_email"))
_APPENDIX = re.compile(r"(?i)^(appendix|section|sec\.?|§)\s*")


@dataclass
class Section:
    number: str  # "3", "3.2", "A", "A.1"; "" for unnumbered ones (References, Acknowledgements)
    title: str
    level: int  # 2 for sections and appendices, 3 for subsections
    markdown: str = field(default="", repr=False)

    @property
    def chars(self) -> int:
        return len(self.markdown)

    @property
    def label(self) -> str:
        return f"{self.number} {self.title}".strip()


@dataclass
class ParsedPaper:
    title: str
    authors: list[str]
    abstract: str
    sections: list[Section]


def _text(node: Any) -> str:
    return " ".join(node.get_text(" ", strip=True).split())


def _clean(soup: Any) -> None:
    """Drop page chrome and images, turn MathML into ``$TeX$``, unwrap links inside the page.
    One walk over the tree collects everything (each ``find_all`` is a full walk, and pages
    run to tens of thousands of tags)."""
    drop, equations, maths, links = [], [], [], []
    for tag in soup.find_all(True):
        classes = tag.get("class") or ()
        if tag.name in _DROP or any(c in _DROP_CLASSES for c in classes):
            drop.append(tag)
        elif tag.name == "table" and any(c.startswith("ltx_equation") for c in classes):
            equations.append(tag)
        elif tag.name == "math":
            maths.append(tag)
        elif tag.name == "a":
            links.append(tag)
    for tag in drop:
        if not tag.decomposed:
            tag.decompose()
    # display equations are layout tables in LaTeXML; one $$...$$ paragraph each reads better
    for table in equations:
        if table.decomposed or table.parent is None:
            continue
        formulas = [m.get("alttext", "") for m in table.find_all("math")]
        number = table.find(class_="ltx_tag_equation")
        para = soup.new_tag("p")
        para.string = "$$ " + " \\\\ ".join(f for f in formulas if f) + " $$" + (f" {_text(number)}" if number else "")
        table.replace_with(para)
    for math in maths:
        if math.decomposed or math.parent is None:
            continue
        tex = math.get("alttext") or _text(math)
        math.replace_with(f" $${tex}$$ " if math.get("display") == "block" else f"${tex}$")
    for link in links:
        if not link.decomposed and link.parent is not None and (link.get("href") or "#").startswith("#"):
            link.unwrap()


def _number_and_title(heading: Any) -> tuple[str, str]:
    tag = heading.find(class_=re.compile(r"\bltx_tag\b"))
    if tag is not None:
        number = _APPENDIX.sub("", _text(tag)).strip().rstrip(".:")
        tag.extract()
        title = _text(heading)
        heading.insert(0, tag)
        return number, title
    text = _text(heading)
    match = re.match(r"^(?:appendix\s+)?((?:\d+|[A-Z](?=\.\d|\s))(?:\.\d+)*)\.?\s+(\S.*)$", text, re.I)
    if match and (match.group(1)[0].isdigit() or text.lower().startswith("appendix") or "." in match.group(1)):
        return match.group(1), match.group(2)
    return "", text


_PARSED: OrderedDict[str, ParsedPaper] = OrderedDict()
_PARSED_KEEP = 8
_PARSED_LOCK = threading.Lock()


def parse_paper(html: str) -> ParsedPaper:
    """The paper in ``html``, every section already in Markdown. Reading a paper means a table
    of contents, then a section or three, all from the same page (cached on disk by ``Net``);
    the last few parses are kept (a pure function's results, keyed by the page's digest) so
    those calls do not parse megabytes of MathML again."""
    key = hashlib.sha1(html.encode("utf-8", "surrogatepass")).hexdigest()
    with _PARSED_LOCK:
        if key in _PARSED:
            _PARSED.move_to_end(key)
            return _PARSED[key]
    parsed = _parse(html)
    with _PARSED_LOCK:
        _PARSED[key] = parsed
        while len(_PARSED) > _PARSED_KEEP:
            _PARSED.popitem(last=False)
    return parsed


def _parse(html: str) -> ParsedPaper:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    converter = MarkdownConverter(heading_style="ATX", bullets="-", escape_underscores=False,
                                  escape_asterisks=False, escape_misc=False)
    soup = BeautifulSoup(html, "html.parser")
    _clean(soup)
    title_node = soup.find(class_="ltx_title_document") or soup.find("h1") or soup.find("title")
    title = _text(title_node) if title_node else ""
    authors = []
    for person in soup.find_all(class_="ltx_personname"):
        name = person.get_text("\n", strip=True).split("\n")[0].strip(" ,")
        if name and name not in authors:
            authors.append(name)
    abstract = ""
    abstract_node = soup.find(class_="ltx_abstract")
    if abstract_node is not None:
        for heading in abstract_node.find_all(re.compile(r"^h\d$")):
            heading.decompose()
        abstract = _text(abstract_node)
    sections: list[Section] = []
    headings = [h for h in soup.find_all(["h2", "h3"]) if not h.find_parent(class_="ltx_abstract")]
    for heading in headings:
        number, name = _number_and_title(heading)
        if not name and not number:
            continue
        level = int(heading.name[1])
        parent = heading.parent
        if parent is not None and parent.name == "section":
            # convert the section's own tree with its heading lifted out (no re-parse)
            at = parent.index(heading)
            heading.extract()
            markdown = _tidy(converter.convert_soup(parent))
            parent.insert(at, heading)
        else:  # plain HTML: the content is what follows, up to the next heading of this level or above
            nodes = []
            stops = ("h1", "h2", "h3") if level == 3 else ("h1", "h2")
            for sibling in heading.next_siblings:
                if getattr(sibling, "name", None) in stops:
                    break
                nodes.append(sibling)
            markdown = _tidy(converter.convert("".join(str(node) for node in nodes)))
        sections.append(Section(number, name, level, markdown))
    if not abstract:
        for i, section in enumerate(sections):
            if section.title.lower() == "abstract":
                abstract = " ".join(section.markdown.split())
                del sections[i]
                break
    return ParsedPaper(title, authors, abstract, sections)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def find_section(sections: list[Section], query: str) -> Section | None:
    """By number ("3", "3.2", "A.1", "Section 3", "Appendix B") or by title words, case-insensitive."""
    query = query.strip()
    number = _APPENDIX.sub("", query).strip().rstrip(".")
    if number and re.fullmatch(r"(?:\d+|[A-Za-z])(?:\.\d+)*", number):
        for section in sections:
            if section.number and section.number.lower() == number.lower():
                return section
    wanted = query.lower()
    for section in sections:
        if section.title.lower() == wanted or section.label.lower() == wanted:
            return section
    words = re.findall(r"\w+", wanted)
    if not words:
        return None

    def matches(section: Section) -> bool:
        title_words = re.findall(r"\w+", section.title.lower())
        return all(any(t.startswith(w) or w.startswith(t) and len(t) > 3 for t in title_words) for w in words)

    found = [s for s in sections if matches(s)]
    if not found:
        return None
    # a section before its subsections, then the shortest title (the closest match)
    return min(found, key=lambda s: (s.level, len(s.title)))


def contents(sections: list[Section]) -> str:
    lines = []
    for section in sections:
        indent = "  " * (section.level - 2)
        lines.append(f"{indent}- {section.label} ({section.chars:,} chars)")
    return "\n".join(lines)


def contents_page(parsed: ParsedPaper, aid: str, source: str) -> str:
    out = [f"# {parsed.title or aid}", f"arXiv {aid} · {source}"]
    if parsed.authors:
        more = f" (+{len(parsed.authors) - 12} more)" if len(parsed.authors) > 12 else ""
        out.append("Authors: " + ", ".join(parsed.authors[:12]) + more)
    out += ["", "## Abstract", parsed.abstract or "(no abstract found in the page)", ""]
    if parsed.sections:
        out += ["## Contents (pass `section` as a number like '3.2' or title words)", contents(parsed.sections)]
    else:
        out.append("(No sections found in this page.)")
    return "\n".join(out)


def section_page(parsed: ParsedPaper, section: Section, aid: str, source: str, spill_dir: Path,
                 max_chars: int) -> str:
    """The section in Markdown: its head within ``max_chars`` (cut at a paragraph), the whole of
    it spilled to a file, and where to go next (its subsections, the next section)."""
    at = parsed.sections.index(section)
    later = parsed.sections[at + 1:]
    inner = []
    for other in later:
        if other.level <= section.level:
            break
        inner.append(other.label)
    following = next((s for s in later if s.level <= section.level), None)
    body = section.markdown or "(this section has no text of its own)"
    out = [f"# {parsed.title or aid} — {section.label}", f"arXiv {aid} · {source}", "", _capped(
        body, spill_dir, f"paper-{aid.replace('/', '_')}-{section.number or 'section'}", max_chars, inner)]
    if following is not None:
        out += ["", f"Next section: {following.label}"]
    return "\n".join(out)


def _capped(body: str, spill_dir: Path, label: str, max_chars: int, subsections: list[str]) -> str:
    if len(body) <= max_chars:
        return body
    cut = body.rfind("\n\n", 0, max_chars)
    if cut < max_chars // 2:  # one long paragraph: end at a sentence, else at a word
        sentence = body.rfind(". ", 0, max_chars)
        cut = sentence + 1 if sentence > max_chars // 2 else body.rfind(" ", 0, max_chars)
    head = body[: cut if cut > max_chars // 2 else max_chars].rstrip()
    shown = f"[Section cut at {len(head):,} of {len(body):,} characters."
    try:
        spill_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(body.encode("utf-8", "replace")).hexdigest()[:10]
        path = spill_dir / f"{label}-{int(time.time())}-{digest}.md"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk costs the rest of the section, never the head
        where = f" It could not be saved ({exc})."
    else:
        where = f" The whole section is in {path} (read it with offset/limit)."
    parts = f" Or read its subsections one by one: {', '.join(subsections)}." if subsections else ""
    return f"{head}\n\n{shown}{where}{parts}]"
