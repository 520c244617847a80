"""Several users at once: real headless Chromium sessions asking one app server at the same time.

One ``streamlit run app.py`` on the sample corpus (the server of test_browser.py)
and six browsers, each with a question of its own. They open the page together
and press Enter together; each must then show its own question with exactly the
quoted sentences and the top citation the engine gives that question asked
alone, nothing of the other sessions' questions, and no error. Only behaviour is
asserted here; ``bench/app_timings.py`` measures the waits.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import test_browser as tb

from qa.cite import page_reference
from qa.engine import Engine

if TYPE_CHECKING:
    from qa.embed import Embedder

# Six questions answered from different pages and documents of the sample corpus; none is one of the
# app's example questions, which a page may show, so none can appear on another session's page by right.
QUESTIONS = (
    "What themes did councils have to bid under in the first round?",
    "How many outcome measures were on the shared data checklist?",
    "Did fewer social workers leave their jobs?",
    "How much did Hertfordshire expect to save with Family Safeguarding?",
    "Why did deregulation projects need longer?",
    "Did the evaluation show that deregulation works?",
)
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"
# The main area's text without what Streamlit marks stale: elements of the page's previous run
# that this run has not replaced (the example questions before the first question) may stay a moment.
MAIN_TEXT = """
const copy = document.querySelector('.stMain, [data-testid="stMain"]').cloneNode(true);
copy.querySelectorAll('[data-stale="true"]').forEach((e) => e.remove());
return copy.textContent;
"""

pytestmark = tb.pytestmark
served = tb.served  # one app server (and its first browser) for this module


def flat(text: str) -> str:
    """Whitespace collapsed, as the browser shows a sentence whose text had line breaks."""
    return " ".join(text.split())


def session(driver: Any, base: str, question: str, start: threading.Barrier) -> dict[str, Any]:
    """Open the app, wait for every session to be ready, ask, and read what this browser shows once the run ends."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 300, poll_frequency=0.2)  # six browsers and the model share two cores
    driver.get(base)
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
    box.send_keys(question)
    start.wait(timeout=600)
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.ID, "source-1-1") or d.find_elements(By.CSS_SELECTOR, ERRORS))
    # The run ended: the reply's announcement (the page's last element) has been made, and no run is shown.
    # The status widget alone is not enough: it may not have appeared yet when the first card is drawn.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ERRORS) or d.execute_script(
        "const l = document.getElementById('qa-live'); return Boolean(l && l.textContent.length)"))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))
    messages = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")
    return {
        "errors": [e.text for e in driver.find_elements(By.CSS_SELECTOR, ERRORS)],
        "messages": len(messages),
        "asked": flat(messages[0].find_element(By.CSS_SELECTOR, "[data-testid='stChatMessageContent']").text)
        if messages else "",  # the message without its avatar
        "answer": [flat(li.text) for li in messages[-1].find_elements(By.CSS_SELECTOR, "li")
                   if li.find_elements(By.CSS_SELECTOR, "a[href^='#source-1-']")] if messages else [],
        "top": flat(driver.find_element(By.ID, "source-1-1").text) if driver.find_elements(By.ID, "source-1-1") else "",
        "main": flat(driver.execute_script(MAIN_TEXT)),
    }


def test_six_sessions_ask_at_once_and_each_sees_its_own_answer(served, sample_index: tuple[Path, Path],
                                                                real_embedder: Embedder) -> None:
    base, site, first, downloads, log = served
    _, index = sample_index
    engine = Engine(index, embedder=real_embedder)
    alone = {q: engine.ask(q) for q in QUESTIONS}  # what each question gets with nobody else asking
    assert all(a.found and a.sentences for a in alone.values()), [q for q, a in alone.items() if not a.found]

    drivers = [first] + [tb.chrome(site.parent / f"profile-load-{n}", downloads) for n in range(1, len(QUESTIONS))]
    seen: dict[str, dict[str, Any]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(len(QUESTIONS))

    def run(driver: Any, question: str) -> None:
        try:
            seen[question] = session(driver, base, question, start)
        except BaseException as exc:  # reported below with the question it belongs to
            start.abort()
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(d, q)) for d, q in zip(drivers, QUESTIONS, strict=True)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for driver in drivers[1:]:
            driver.quit()
    assert failures == [], f"{failures[:2]}\n{log.read_text(errors='replace')[-3000:]}"
    for question, answer in alone.items():
        got = seen[question]
        assert got["errors"] == [], (question, got["errors"])
        assert got["messages"] == 2 and got["asked"] == question, (question, got["asked"])
        others = [q for q in QUESTIONS if q != question]
        assert not [q for q in others if q in got["main"]], (question, "shows another session's question")
        # Exactly the sentences this question gets when asked alone, in order, each with its [n].
        expected = [flat(s.text) for s in answer.sentences]
        assert len(got["answer"]) == len(expected), (question, got["answer"], expected)
        assert all(line.startswith(sentence) for line, sentence in zip(got["answer"], expected, strict=True)), \
            (question, got["answer"], expected)
        # The first source card cites the same document, and its page (a PDF) or section (a text document).
        top = answer.passages[0]
        assert top.document.title in got["top"], (question, got["top"], top.document.title)
        where = page_reference(top.document, top.chunk) if top.document.kind == "pdf" else top.chunk.section
        assert where and where in got["main"], (question, where)
