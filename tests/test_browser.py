"""End to end: the real app, the real model and the sample corpus in a headless Chromium.

Runs ``streamlit run`` on a copy of ``app.py`` and ``.streamlit/config.toml`` in a
temporary folder (so the sources the app publishes under ``static/`` land there),
asks a question through the chat box, waits for a cited passage and follows its
"Open at page" link to check the app itself serves the PDF at the right page.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
QUESTION = "How much did the first round invest?"

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


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
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


def chrome(profile: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1400", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_ask_and_open_the_cited_pdf_page(tmp_path: Path, sample_index: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    corpus, index = sample_index
    site = tmp_path / "site"
    (site / ".streamlit").mkdir(parents=True)
    shutil.copyfile(ROOT / "app.py", site / "app.py")
    shutil.copyfile(ROOT / ".streamlit" / "config.toml", site / ".streamlit" / "config.toml")
    env = {k: v for k, v in os.environ.items() if k != "QA_MODEL"}
    env.update(QA_INDEX_DIR=str(index), QA_CORPUS_DIR=str(corpus), HF_HUB_OFFLINE="1")
    port = free_port()
    base = f"http://localhost:{port}"
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true"],
            cwd=site, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    driver = None
    try:
        wait_healthy(base, proc, log)
        driver = chrome(tmp_path / "profile")
        driver.get(base)
        wait = WebDriverWait(driver, 90)
        box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
        box.send_keys(QUESTION)
        box.send_keys(Keys.ENTER)
        link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "a[href*='app/static/corpus/']")))
        wait.until(lambda d: "£110 million" in d.find_element(By.TAG_NAME, "body").text)
        first = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")[0]
        driver.execute_script("arguments[0].scrollIntoView()", first)
        time.sleep(1)  # let the cards paint before the screenshot
        driver.save_screenshot(str(tmp_path / "app.png"))

        page_text = driver.find_element(By.TAG_NAME, "body").text
        assert re.search(r"\(\d{4}\), p\. \w+", page_text), "no page citation on the page"
        assert "Open at page" in link.text
        href = link.get_attribute("href")
        assert href and href.startswith(f"{base}/app/static/corpus/")
        match = re.search(r"\.pdf#page=(\d+)$", href)
        assert match, href
        with urllib.request.urlopen(href.split("#")[0], timeout=10) as response:
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
        assert content_type.startswith("application/pdf")
        assert body.startswith(b"%PDF")
        from pypdf import PdfReader

        served = PdfReader(str(site / "static" / href.split("/app/static/")[1].split("#")[0]))
        assert 1 <= int(match.group(1)) <= len(served.pages)
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
