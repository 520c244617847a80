"""End to end: the real app, the real model and the sample corpus in a headless Chromium.

One server and one browser for the module. Runs ``streamlit run`` on a copy of
``app.py`` and ``.streamlit/config.toml`` in a temporary folder (so the sources
the app publishes under ``static/`` land there) with this checkout's ``qa`` on
the path, then reads and cites the way a user does: asks, lands on the reply,
follows [1] to its source, looks at the marked page, pins a quote, downloads
the Word, BibTeX and RIS files, reloads, and opens a ``?q=`` link.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
QUESTION = "How much did the first round invest?"
LINKED = "What did the wave 1 evaluation recommend?"
WHERE = "Where can I find the official evaluation reports on GOV.UK?"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason="needs Chromium and its driver: apt-get install chromium chromium-driver",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not become healthy in {timeout:.0f} s:\n{log.read_text(errors='replace')}")


def chrome(profile: Path, downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_FLAGS, "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sample_index: tuple[Path, Path]):
    """(base URL, site folder, driver, downloads folder): the app served from a copy, and one browser."""
    corpus, index = sample_index
    base_dir = tmp_path_factory.mktemp("browser")
    site = base_dir / "site"
    (site / ".streamlit").mkdir(parents=True)
    (site / "static").mkdir()
    shutil.copyfile(ROOT / "app.py", site / "app.py")
    shutil.copyfile(ROOT / ".streamlit" / "config.toml", site / ".streamlit" / "config.toml")
    env = {k: v for k, v in os.environ.items() if k != "QA_MODEL"}
    env.update(QA_INDEX_DIR=str(index), QA_CORPUS_DIR=str(corpus), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    port = free_port()
    base = f"http://localhost:{port}"
    log = base_dir / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
            cwd=site, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    driver = None
    try:
        wait_healthy(base, proc, log)
        downloads = base_dir / "downloads"
        downloads.mkdir()
        driver = chrome(base_dir / "profile", downloads)
        yield base, site, driver, downloads, log
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def body_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def press(driver, element, timeout: float = 30) -> None:
    """Click as a user does: bring the element to the middle of the view and click it.

    While the page is still drawing (an image arriving above, a spinner), another
    element may briefly sit on top; like a user, try again once the page settles.
    """
    from selenium.common.exceptions import ElementClickInterceptedException

    deadline = time.monotonic() + timeout
    while True:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        try:
            element.click()
            return
        except ElementClickInterceptedException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def top_of(driver, element) -> float:
    return float(driver.execute_script("return arguments[0].getBoundingClientRect().top", element))


def in_view(driver, element) -> bool:
    top = top_of(driver, element)
    return -2 <= top < float(driver.execute_script("return window.innerHeight")) / 2


def settles_in_view(driver, element, seconds: float = 1.0, timeout: float = 45) -> tuple[bool, list[float]]:
    """Whether the element stays in view for ``seconds`` before ``timeout`` (the page may move while it is drawn).

    Also returns the element's top as sampled, for the failure message. The timeout
    is generous because a busy machine draws slowly; a view left at the end of the
    chat never settles, however long it waits.
    """
    deadline = time.monotonic() + timeout
    since = None
    tops: list[float] = []
    while time.monotonic() < deadline:
        tops.append(round(top_of(driver, element)))
        if in_view(driver, element):
            since = since or time.monotonic()
            if time.monotonic() - since >= seconds:
                return True, tops
        else:
            since = None
        time.sleep(0.1)
    return False, tops


def wait_file(folder: Path, name: str, timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = folder / name
        if path.is_file() and path.stat().st_size and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.2)
    raise AssertionError(f"{name} was not downloaded; the folder holds {sorted(p.name for p in folder.iterdir())}")


def test_read_and_cite_in_the_browser(served) -> None:
    import docx
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, site, driver, downloads, log = served
    wait = WebDriverWait(driver, 90)
    driver.get(base)
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
    assert "no static folder" not in log.read_text(errors="replace")

    # Ask: the view lands on the top of the new reply, and the reply is announced.
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: "£110 million" in body_text(d) and d.find_elements(By.ID, "source-1-1"))
    messages = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")
    reply = messages[-1]
    settled, tops = settles_in_view(driver, reply)
    assert settled, f"the reply's top, every 0.1 s: {tops[-60:]}"
    live = driver.find_element(By.ID, "qa-live")
    assert live.get_attribute("aria-live") == "polite" and "Answer" in live.get_attribute("textContent")
    driver.save_screenshot(str(site.parent / "reply.png"))

    # [n] in the answer leads to its source card.
    marker = reply.find_element(By.CSS_SELECTOR, "li a[href^='#source-1-']")
    target = marker.get_attribute("href").split("#")[1]
    card = driver.find_element(By.ID, target)
    press(driver, marker)
    wait.until(lambda d: in_view(d, card))
    page_link = reply.find_element(By.CSS_SELECTOR, "li a[href*='app/static/corpus/']")
    assert re.search(r"\.pdf#page=\d+$", page_link.get_attribute("href"))

    # The cited PDF page, drawn with the quoted sentence marked.
    toggle = driver.execute_script(
        "const block = arguments[0].closest('[data-testid=\"stVerticalBlock\"]');"
        "return [...block.querySelectorAll('label')].find(l => l.textContent.includes('Show on the page'));", card)
    assert toggle is not None, "the cited card offers no page view"
    press(driver, toggle)
    image = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stImage'] img")))
    wait.until(lambda d: "marked in yellow" in body_text(d))
    src = image.get_attribute("src")
    assert src, "the page image has no source"
    with urllib.request.urlopen(src, timeout=10) as response:
        picture = Image.open(io.BytesIO(response.read())).convert("RGB")
    pixels = np.asarray(picture).reshape(-1, 3).astype(int)
    r, g, b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    marked = int(((r > 240) & (g >= 215) & (g <= 250) & (b >= 110) & (b <= 180)).sum())
    assert marked > 500, marked  # a highlight is drawn on the page

    # The served PDF opens at the page, and another site's page may not read it.
    with urllib.request.urlopen(page_link.get_attribute("href").split("#")[0], timeout=10) as response:
        assert response.read(5) == b"%PDF-"
        assert response.headers.get("Content-Type", "").startswith("application/pdf")
        assert response.headers.get("Access-Control-Allow-Origin") is None

    # Pin one sentence; download it as Word, and the references as BibTeX and RIS.
    reply = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")[-1]
    pin = next(b for b in reply.find_elements(By.TAG_NAME, "button") if "Pin “" in b.text)
    press(driver, pin)
    sidebar = driver.find_element(By.CSS_SELECTOR, "[data-testid='stSidebar']")
    for label, name in (("Quotes (Word)", "quotes.docx"), ("References (BibTeX)", "references.bib"),
                        ("References (RIS)", "references.ris")):
        def labelled(d: object, label: str = label) -> WebElement | None:
            return next((b for b in sidebar.find_elements(By.TAG_NAME, "button") if b.text.strip().endswith(label)), None)

        button = wait.until(labelled)
        assert button is not None  # until() returns only a truthy result
        press(driver, button)
        wait_file(downloads, name)
    word = docx.Document(str(downloads / "quotes.docx"))
    quoted = [p.text for p in word.paragraphs if p.text.startswith("“")]
    assert len(quoted) == 1 and re.search(r"” \(.+, \d{4}, p\. \w+", quoted[0]), quoted
    assert "£110 million" in quoted[0] or "first round" in quoted[0].lower()
    bib = (downloads / "references.bib").read_text(encoding="utf-8")
    assert re.search(r"title = \{\{.+\}\}", bib) and re.search(r"year = \{\d{4}\}", bib)
    assert "url = {https://www.gov.uk/" in bib and "urldate = {" in bib
    ris = (downloads / "references.ris").read_text(encoding="utf-8")
    assert re.search(r"^TI  - .+$", ris, re.MULTILINE) and re.search(r"^PY  - \d{4}", ris, re.MULTILINE)
    assert re.search(r"^UR  - https://www\.gov\.uk/", ris, re.MULTILINE)
    assert re.search(r"^Y2  - \d{4}/\d\d/\d\d", ris, re.MULTILINE)

    # A reload keeps the conversation and the collection.
    driver.refresh()
    wait.until(lambda d: "£110 million" in body_text(d) and QUESTION in body_text(d))
    wait.until(lambda d: "Quotes (Word)" in body_text(d))  # the collection's downloads draw after the chat

    # A ?q= link asks its question on load.
    driver.get(f"{base}/?q={quote(LINKED)}")
    wait.until(lambda d: LINKED in body_text(d) and d.find_elements(By.ID, "source-1-1"))
    assert QUESTION not in body_text(driver)  # a new conversation
    wait.until(lambda d: "q=" not in d.current_url)  # asked once: a reload will not ask it again

    # A web address in a document's text shows as text, not as a link.
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
    box.send_keys(WHERE)
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.ID, "source-2-1"))
    main = driver.find_element(By.CSS_SELECTOR, ".stMain, [data-testid='stMain']")
    for summary in main.find_elements(By.XPATH, ".//summary[.//*[contains(text(), 'Show context')]]"):
        driver.execute_script("arguments[0].click()", summary)
    wait.until(lambda d: "gov.uk/government/collections" in main.text.replace("\u2060", ""))
    hrefs = [a.get_attribute("href") or "" for a in main.find_elements(By.TAG_NAME, "a")]
    assert not [h for h in hrefs if "gov.uk" in h], hrefs

    # A withdrawn or unknown file is not served.
    try:
        urllib.request.urlopen(f"{base}/app/static/corpus/0000000000000000/gone.pdf", timeout=10)
        raise AssertionError("an unknown file was served")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404


ACROSS = "Which practices reduced the number of children in care?"


def test_across_the_reports_in_the_browser(served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, site, driver, _downloads, _log = served
    wait = WebDriverWait(driver, 90)
    driver.get(base)
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))

    # Switch to "Across the reports" and ask.
    option = wait.until(lambda d: next((label for label in d.find_elements(By.CSS_SELECTOR, "[data-testid='stRadio'] label")
                                        if label.text.strip() == "Across the reports"), None))
    press(driver, option)
    wait.until(lambda d: "each report is searched on its own" in body_text(d))
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
    box.send_keys(ACROSS)
    box.send_keys(Keys.ENTER)
    summary = wait.until(lambda d: re.search(r"(\d+) of (\d+) reports answer", body_text(d)))
    assert summary is not None  # until() returns only a truthy result
    answering, searched = int(summary.group(1)), int(summary.group(2))
    assert 1 <= answering <= searched

    # One row per answering report: numbered titles, each report once, each with a quote and a page link.
    main = driver.find_element(By.CSS_SELECTOR, ".stMain, [data-testid='stMain']")

    def numbered_titles(_d: object) -> list[str]:
        return [s.text for s in main.find_elements(By.TAG_NAME, "strong") if re.match(r"\d+\. ", s.text)]

    wait.until(lambda d: len(numbered_titles(d)) >= answering)  # the rows draw after the summary line
    titles = numbered_titles(driver)
    assert len(titles) == answering and len(set(titles)) == answering, titles
    links = [a.get_attribute("href") or "" for a in main.find_elements(By.TAG_NAME, "a")]
    assert any(re.search(r"app/static/corpus/\w+/[^/]+\.pdf#page=\d+$", h) for h in links), links
    assert main.text.count("“") >= answering

    # A row's page view: the cited PDF page drawn with the quote marked.
    toggle = wait.until(lambda d: next((label for label in main.find_elements(By.TAG_NAME, "label")
                                        if "Show on the page" in (label.get_attribute("textContent") or "")), None))
    assert toggle is not None, "no row offers a page view"  # until() returns only a truthy result
    press(driver, toggle)
    driver.save_screenshot(str(site.parent / "across.png"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stImage'] img")))
    wait.until(lambda d: "marked in yellow" in body_text(d))

    # Pin a row: it joins the collection, which offers its downloads.
    pin = next(b for b in main.find_elements(By.TAG_NAME, "button")
               if (b.get_attribute("textContent") or "").strip().endswith("Pin"))
    press(driver, pin)
    sidebar = driver.find_element(By.CSS_SELECTOR, "[data-testid='stSidebar']")
    wait.until(lambda d: "Quotes (Word)" in sidebar.text)
    wait.until(lambda d: any((b.get_attribute("textContent") or "").strip().endswith("Unpin")
                             for b in d.find_elements(By.TAG_NAME, "button")))
