"""HTML documents: main content only, cells and terms kept apart, headings as sections."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from qa.chunking import ChunkSettings
from qa.clean import clean_document
from qa.ingest import parse_file
from qa.readers import html_to_text, read_document

LONG = ("Partners in Practice councils were given funding to try new ways of working with families, "
        "and each reported what changed for children and staff over the two years. ")

# A page laid out as GOV.UK lays out a publication: skip link, cookie banner, header with a
# menu, phase banner, breadcrumbs, then <main> with the title, its metadata, a contents list
# and the sections, then related links, the "Is this page useful?" form and the footer.
GOVUK_PAGE = f"""<!DOCTYPE html>
<html lang="en" class="govuk-template">
<head>
  <meta charset="utf-8">
  <title>Innovation programme: round 2 findings - GOV.UK</title>
  <link rel="stylesheet" href="/assets/application.css">
  <script>window.GOVUK = {{"cookies": "do not index this script"}};</script>
</head>
<body class="govuk-template__body">
  <a href="#main-content" class="govuk-skip-link">Skip to main content</a>
  <div id="global-cookie-message" class="gem-c-cookie-banner govuk-clearfix">
    <p>We use some essential cookies to make this website work.</p>
    <button type="button">Accept additional cookies</button>
  </div>
  <header class="govuk-header" role="banner">
    <a href="/" class="govuk-header__link">GOV.UK</a>
    <nav aria-label="Menu"><ul><li><a href="/browse">Topics</a></li><li><a href="/gov">Government activity</a></li></ul></nav>
    <form action="/search"><input name="q"><button>Search GOV.UK</button></form>
  </header>
  <div class="govuk-width-container">
    <div class="govuk-phase-banner"><p>This is a new service</p></div>
    <nav class="govuk-breadcrumbs" aria-label="Breadcrumb">
      <ol class="govuk-breadcrumbs__list">
        <li class="govuk-breadcrumbs__list-item"><a href="/">Home</a></li>
        <li class="govuk-breadcrumbs__list-item"><a href="/childrens-social-care">Children's social care</a></li>
      </ol>
    </nav>
    <main class="govuk-main-wrapper" id="main-content" role="main">
      <div class="gem-c-title"><h1 class="gem-c-title__text">Innovation programme: round 2 findings</h1></div>
      <dl class="gem-c-metadata__list">
        <dt>From:</dt><dd><a href="/dfe">Department for Education</a></dd>
        <dt>Published</dt><dd>10 March 2020</dd>
      </dl>
      <nav class="gem-c-contents-list" aria-label="Contents">
        <h2>Contents</h2><ol><li><a href="#summary">Summary</a></li><li><a href="#costs">Costs by council</a></li></ol>
      </nav>
      <div class="govspeak">
        <h2 id="summary">Summary</h2>
        <p>{LONG}</p>
        <p>Most projects <strong>reduced</strong> the number of
           children entering care.</p>
        <h2 id="costs">Costs by council</h2>
        <p>{LONG}</p>
        <table>
          <caption>Visits and costs</caption>
          <thead><tr><th scope="col">Council</th><th scope="col">Visits</th><th>Cost</th></tr></thead>
          <tbody>
            <tr><td>Leeds</td><td>112</td><td>&pound;2.6m</td></tr>
            <tr><td>Hertfordshire</td><td>87</td><td>&pound;1.1m</td></tr>
          </tbody>
        </table>
        <h2 id="terms">Terms used</h2>
        <dl><dt>Edge of care</dt><dd>Support for adolescents at risk of entering care.</dd>
            <dt>Systemic practice</dt><dd>Working with the whole family system.</dd></dl>
        <p>Hidden parts: <span hidden>never shown</span><span aria-hidden="true">decorative</span>none.</p>
      </div>
    </main>
    <aside class="gem-c-related-navigation" role="complementary"><h2>Related content</h2>
      <ul><li><a href="/other">Another publication</a></li></ul></aside>
    <div class="gem-c-feedback"><h2>Is this page useful?</h2><form><button>Yes</button><button>No</button></form></div>
  </div>
  <footer class="govuk-footer" role="contentinfo">
    <p>All content is available under the Open Government Licence v3.0, except where otherwise stated</p>
    <p>&copy; Crown copyright</p>
  </footer>
  <script src="/assets/application.js"></script>
</body>
</html>
"""


def test_govuk_page_keeps_only_the_main_content() -> None:
    title, text = html_to_text(GOVUK_PAGE)
    assert title == "Innovation programme: round 2 findings"
    assert text.startswith("# Innovation programme: round 2 findings\n")
    for chrome in ("Skip to main content", "essential cookies", "Topics", "Search GOV.UK", "new service",
                   "Home", "Children's social care", "Contents", "Related content", "Another publication",
                   "Is this page useful", "Crown copyright", "Open Government Licence", "do not index",
                   "never shown", "decorative"):
        assert chrome not in text, chrome
    assert "Most projects reduced the number of children entering care." in text
    assert "Hidden parts: none." in text


def test_table_cells_and_definitions_stay_apart() -> None:
    _, text = html_to_text(GOVUK_PAGE)
    lines = text.split("\n")
    assert "Visits and costs" in lines
    assert "Council | Visits | Cost" in lines
    assert "Leeds | 112 | \u00a32.6m" in lines and "Hertfordshire | 87 | \u00a31.1m" in lines
    assert "Leeds112" not in text
    for term, definition in (("Edge of care", "Support for adolescents at risk of entering care."),
                             ("Systemic practice", "Working with the whole family system.")):
        assert lines[lines.index(term) + 1] == definition
    assert lines[lines.index("From:") + 1] == "Department for Education"
    assert html_to_text("<dl><dt>A</dt><dd>b</dd></dl>")[1] == "A\nb"
    assert html_to_text("<table><tr><td>Leeds</td><td>112</td></tr></table>")[1] == "Leeds | 112"
    assert html_to_text("<table><tr><td>&nbsp;</td><td>Leeds</td><td> "
                        "</td><td>&nbsp;</td><td>112</td></tr></table>")[1] == "Leeds | 112"


def test_govuk_headings_become_pages_and_sections(tmp_path: Path) -> None:
    (tmp_path / "round-2.html").write_text(GOVUK_PAGE, encoding="utf-8")
    raw = read_document(tmp_path / "round-2.html", "round-2.html")
    assert raw.kind == "html" and raw.title == "Innovation programme: round 2 findings"
    # A short page: its sections share one page, and each chunk still names its own section.
    assert [p.text.split("\n")[0] for p in raw.pages] == ["# Innovation programme: round 2 findings"]
    assert "\n## Summary\n" in raw.pages[0].text and "\n## Terms used\n" in raw.pages[0].text
    _, full = html_to_text(GOVUK_PAGE)
    assert "".join(p.text for p in raw.pages) == full
    pages, headings = clean_document(raw)
    assert [h.text for h in headings] == ["Innovation programme: round 2 findings", "Summary", "Costs by council", "Terms used"]
    parsed = parse_file(str(tmp_path / "round-2.html"), "round-2.html", None, ChunkSettings(), None, 5000, 1_000_000)
    for chunk in parsed.chunks:
        if "Leeds | 112" in chunk.text:
            assert chunk.section == "Costs by council"
        if "children entering care" in chunk.text:
            assert chunk.section == "Summary" and chunk.page == 1


def test_page_without_main_drops_page_level_header_nav_and_footer() -> None:
    page = """<html><body><header><a href="/">Site name</a></header><nav><a href="/a">Menu item</a></nav>
    <h1>Leaving care</h1><p>Young people leaving care were offered a personal adviser.</p>
    <p>Advisers stayed in touch until each young person turned twenty-five, and most of them did.</p>
    <article><header><h2>Case study</h2><p>By the evaluation team</p></header><p>Body of the case study.</p>
    <footer>Filed under case studies</footer></article>
    <footer>Site footer text</footer></body></html>"""
    _, text = html_to_text(page)
    assert "Site name" not in text and "Menu item" not in text and "Site footer text" not in text
    assert text.startswith("# Leaving care\n\nYoung people leaving care")
    # A header or footer inside an article belongs to the article.
    assert "## Case study" in text and "By the evaluation team" in text and "Filed under case studies" in text


def test_page_level_header_with_the_title_and_a_page_wide_form_are_kept() -> None:
    page = """<body><form id="aspnetForm"><header class="page-header"><h1>Staying put</h1></header>
    <p>Young people stayed with their foster carers after eighteen.</p><input value="hidden state"></form></body>"""
    assert html_to_text(page)[1] == "# Staying put\n\nYoung people stayed with their foster carers after eighteen."


def test_a_lone_article_is_the_main_content() -> None:
    page = """<body><div class="sidebar">Popular posts and adverts</div>
    <article><h1>Kinship care</h1><p>Grandparents looked after most of the children.</p></article></body>"""
    assert html_to_text(page)[1] == "# Kinship care\n\nGrandparents looked after most of the children."


def test_empty_main_falls_back_to_the_body() -> None:
    page = "<body><main> </main><div><p>The only text of the page.</p></div></body>"
    assert html_to_text(page)[1] == "The only text of the page."


def test_lists_line_breaks_and_preformatted_text() -> None:
    page = """<p>First line<br>second line</p><ul><li>One</li><li> Two <em>words</em></li><li></li></ul>
    <pre>col1  col2
a     b</pre><!-- a comment --><p>caf&eacute; &amp; tea&nbsp;time</p>"""
    text = html_to_text(page)[1]
    assert text == "First line\nsecond line\n\n- One\n- Two words\n\ncol1  col2\na     b\n\ncaf\u00e9 & tea\u00a0time"


def test_nested_table_rows_are_not_repeated() -> None:
    page = "<table><tr><td>Outer</td><td><table><tr><td>inner a</td><td>inner b</td></tr></table></td></tr></table>"
    text = html_to_text(page)[1]
    assert text == "Outer | inner a | inner b"


def test_broken_and_deeply_nested_markup_reads() -> None:
    assert html_to_text("<p>Unclosed <b>bold <i>both</p><p>next")[1] == "Unclosed bold both\n\nnext"
    deep = "<div>" * 20_000 + "deep text" + "</div>" * 20_000
    assert html_to_text(deep)[1] == "deep text"


_TAGS = ["p", "div", "table", "tr", "td", "th", "ul", "li", "dl", "dt", "dd", "h2", "pre", "br", "nav", "main",
         "header", "footer", "article", "script", "span", "b", "caption", "hr"]
_piece = st.one_of(
    st.sampled_from(_TAGS).map(lambda t: f"<{t}>"),
    st.sampled_from(_TAGS).map(lambda t: f"</{t}>"),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    st.sampled_from(["&amp;", "&#0;", "&nbsp;", "<!-- c -->", "<![CDATA[x]]>", "\n", "  "]),
)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(_piece, max_size=60))
@example(pieces=["0", "<p>", "<li>", "<p>", "0"])  # an empty list item between two paragraph breaks
def test_any_markup_gives_clean_text(pieces: list[str]) -> None:
    """Whatever the markup, the text has no break markers left, no blank runs and no untrimmed lines."""
    title, text = html_to_text("".join(pieces))
    assert "\x00" not in text and "\x00" not in title
    assert "\n\n\n" not in text and text == text.strip()
    assert all(line == line.strip(" \t") for line in text.split("\n"))
    if "|" not in "".join(pieces):  # cells are joined only between two that have text
        assert not any(line.startswith("|") or line.endswith("|") for line in text.split("\n"))


def test_an_empty_list_item_between_paragraphs_leaves_one_blank_line() -> None:
    """The empty item drops out and the two paragraph breaks around it count as one."""
    assert html_to_text("0<p><li><p>0")[1] == "0\n\n0"
    assert html_to_text("<p>First</p><ul><li> </li></ul><p>Second</p>")[1] == "First\n\nSecond"
