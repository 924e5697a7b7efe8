"""arXiv's HTML full text and ar5iv on 127.0.0.1, for ``hf_papers read_paper``.

``ArxivEmulator()`` answers like arxiv.org: ``GET /html/<id>`` (also ``<id>v2``) is the
paper's LaTeXML page, or a 404 "No HTML for '<id>'" page when the paper has no HTML
rendering. ``ArxivEmulator(flavor="ar5iv")`` answers like ar5iv: ``/html/<id>`` is the page,
``/abs/<id>`` redirects (301) to it, and an unknown paper is a 404.

Pages come from ``latexml_page(...)``, which writes the markup arXiv's converter produces
(``ltx_document``, ``<section class="ltx_section">`` with ``<h2 class="ltx_title">`` and
an ``ltx_tag`` span holding the number, MathML with ``alttext``, equation tables,
citations linking to ``#bib``, figures, the bibliography section).

Built on ``RoutedEmulator`` (tests/fakes/_routed.py), as is ``s2_server``: every request
is recorded with its headers (lowercased) in ``requests``, and ``fail_next`` scripts error
answers.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from tests.fakes._routed import Call, RawResponse, RoutedEmulator


# ---------------------------------------------------------------- arXiv / ar5iv


def _math(tex: str) -> str:
    return (f'<math id="m" class="ltx_Math" alttext="{html_lib.escape(tex)}" display="inline">'
            f'<semantics><mi>{html_lib.escape(tex)}</mi><annotation encoding="application/x-tex">'
            f'{html_lib.escape(tex)}</annotation></semantics></math>')


def _paragraph(text: str, sid: str, n: int) -> str:
    # "$x$" in test prose becomes MathML, "[n]" a citation, as LaTeXML writes them
    body = html_lib.escape(text)
    body = re.sub(r"\$(.+?)\$", lambda m: _math(html_lib.unescape(m.group(1))), body)
    body = re.sub(r"\[(\d+)\]", r'<cite class="ltx_cite ltx_citemacro_cite">[<a href="#bib.bib\1" '
                                r'title="" class="ltx_ref">\1</a>]</cite>', body)
    return f'<div id="{sid}.p{n}" class="ltx_para"><p class="ltx_p">{body}</p></div>'


def _section_html(number: str, title: str, paragraphs: list[str], subsections: list[Any], sid: str,
                  level: int = 2) -> str:
    kind = "section" if level == 2 else "subsection"
    appendix = number[:1].isalpha()
    if appendix and level == 2:
        kind = "appendix"
    tag_text = f"Appendix {number}" if appendix and level == 2 else number
    tag = f'<span class="ltx_tag ltx_tag_{kind}">{tag_text} </span>' if number else ""
    parts = [f'<section id="{sid}" class="ltx_{kind}">',
             f'<h{level} class="ltx_title ltx_title_{kind}">{tag}{html_lib.escape(title)}</h{level}>']
    parts += [_paragraph(text, sid, i) for i, text in enumerate(paragraphs, 1)]
    for j, (sub_number, sub_title, sub_paragraphs) in enumerate(subsections, 1):
        parts.append(_section_html(sub_number, sub_title, sub_paragraphs, [], f"{sid}.SS{j}", level=3))
    parts.append("</section>")
    return "\n".join(parts)


def latexml_page(title: str, abstract: str, sections: list[tuple[Any, ...]], *, authors: tuple[str, ...] = (),
                 references: tuple[str, ...] = (), equation: str | None = None) -> str:
    """A LaTeXML page. ``sections`` are ``(number, title, [paragraphs], [(number, title, [paragraphs]), ...])``
    (the subsection list may be left out); ``equation`` (TeX) adds a numbered display equation
    to the first section; ``references`` become the bibliography."""
    people = "".join(f'<span class="ltx_creator ltx_role_author"><span class="ltx_personname">{html_lib.escape(a)}'
                     '<br class="ltx_break"/>Some University</span></span>' for a in authors)
    body = []
    for i, entry in enumerate(sections, 1):
        number, name, paragraphs = entry[0], entry[1], list(entry[2])
        subsections = list(entry[3]) if len(entry) > 3 else []
        sid = f"A{i}" if str(number)[:1].isalpha() else f"S{i}"
        html_section = _section_html(str(number), name, paragraphs, subsections, sid)
        if equation and i == 1:
            eq = (f'<table id="S1.E1" class="ltx_equation ltx_eqn_table"><tbody><tr class="ltx_equation ltx_eqn_row">'
                  f'<td class="ltx_eqn_cell">{_math(equation).replace("inline", "block")}</td>'
                  f'<td class="ltx_eqn_cell ltx_eqn_eqno"><span class="ltx_tag ltx_tag_equation">(1)</span></td>'
                  f'</tr></tbody></table>')
            html_section = html_section.replace("</section>", eq + "\n</section>")
        body.append(html_section)
    if references:
        items = "".join(f'<li id="bib.bib{i}" class="ltx_bibitem"><span class="ltx_bibblock">{html_lib.escape(r)}'
                        f'</span></li>' for i, r in enumerate(references, 1))
        body.append('<section id="bib" class="ltx_bibliography"><h2 class="ltx_title ltx_title_bibliography">'
                    f'References</h2><ul class="ltx_biblist">{items}</ul></section>')
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{html_lib.escape(title)}</title>
<script>window.MathJax = {{}};</script><link rel="stylesheet" href="/static/browse/0.3.4/css/ar5iv.0.7.9.min.css"/>
</head><body>
<header class="mob_header"><nav><a href="/">arXiv</a> <h2>HTML (experimental)</h2></nav></header>
<div class="ltx_page_main"><div class="ltx_page_content">
<article class="ltx_document ltx_authors_1line">
<h1 class="ltx_title ltx_title_document">{html_lib.escape(title)}</h1>
<div class="ltx_authors">{people}</div>
<div class="ltx_abstract"><h6 class="ltx_title ltx_title_abstract">Abstract</h6>
<p id="id1.id1" class="ltx_p">{html_lib.escape(abstract)}</p></div>
{chr(10).join(body)}
</article></div>
<footer class="ltx_page_footer"><div class="ltx_page_logo">Generated by LaTeXML</div></footer></div>
</body></html>"""


class ArxivEmulator(RoutedEmulator):
    """arxiv.org's ``/html/<id>`` (``flavor="arxiv"``) or ar5iv's ``/html/<id>`` + ``/abs/<id>``."""

    ROUTES = [
        ("GET", r"/html/(?P<id>.+?)/?", "_html"),
        ("GET", r"/abs/(?P<id>.+?)/?", "_abs"),
    ]

    def __init__(self, flavor: str = "arxiv") -> None:
        if flavor not in ("arxiv", "ar5iv"):
            raise ValueError(f"flavor must be 'arxiv' or 'ar5iv', not {flavor!r}")
        super().__init__()
        self.flavor = flavor
        self._thread_name = f"{flavor}-emulator"
        self._pages: dict[str, str] = {}

    def add_paper(self, arxiv_id: str, page: str) -> None:
        """Serve ``page`` for ``arxiv_id`` (any version of it)."""
        with self._lock:
            self._pages[re.sub(r"v\d+$", "", arxiv_id)] = page

    def _page(self, aid: str) -> str | None:
        return self._pages.get(re.sub(r"v\d+$", "", aid))

    def _html(self, call: Call) -> RawResponse:
        aid = call.params["id"]
        page = self._page(aid)
        if page is None:
            if self.flavor == "arxiv":
                text = (f"<!DOCTYPE html><html><head><title>No HTML for '{aid}'</title></head><body>"
                        f"<h1>No HTML for '{aid}'</h1><p>HTML is not available for the source. "
                        "This could be due to the source files not being HTML, LaTeX, or a conversion "
                        "failure.</p></body></html>")
            else:
                text = "<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
            return RawResponse(404, text.encode(), "text/html; charset=utf-8")
        return RawResponse(200, page.encode(), "text/html; charset=utf-8")

    def _abs(self, call: Call) -> RawResponse:
        aid = call.params["id"]
        if self.flavor == "ar5iv":
            return RawResponse(301, b"", "text/html", {"Location": f"/html/{aid}"})
        if self._page(aid) is None:
            return RawResponse(404, b"<html><body>Article not found</body></html>", "text/html; charset=utf-8")
        return RawResponse(200, f"<html><body><h1>arXiv:{aid}</h1></body></html>".encode(),
                           "text/html; charset=utf-8")
