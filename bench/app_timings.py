"""Browser timings of the app: start-up, first question after start, warm questions, several users at once.

Serves app.py on the sample corpus (indexed once into a temporary folder) with
``streamlit run``, drives it in headless Chromium and times what a user waits
for: from pressing Enter to the reply's first source (or notice) being on the
screen. With several sessions, that many browsers press Enter together, each on
its own question. Every figure is written beside the machine's load average
while it was measured. Rewrites docs/app-timings.md unless --no-write.

    .venv/bin/python bench/app_timings.py [--questions 20] [--restarts 3] [--sessions 1,3,5,8] [--rounds 4] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "app-timings.md"
QUESTIONS = ROOT / "tests" / "data" / "sample_questions.jsonl"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")
REPLY_READY = """
const m = document.querySelectorAll('[data-testid="stChatMessage"]');
if (m.length < arguments[0] + 2) return false;
const reply = m[arguments[0] + 1];
const r = reply.getBoundingClientRect();
return !!reply.querySelector('h3, [role="alert"]') && r.top < window.innerHeight && r.bottom > 0;
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load() -> float:
    """The machine's one-minute load average now (runnable processes, all users; 2 means two busy cores)."""
    return os.getloadavg()[0]


class Figure:
    """Timings of one kind with the load average read as each was taken."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.loads: list[float] = []

    def add(self, seconds: float) -> None:
        self.values.append(seconds)
        self.loads.append(load())

    def load_text(self) -> str:
        low, high = min(self.loads), max(self.loads)
        return f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f}-{high:.1f}"


class Server:
    """``streamlit run app.py`` from a copy of the app, timed from launch to healthy."""

    def __init__(self, work: Path, corpus: Path, index: Path) -> None:
        self.site = work / "site"
        if not self.site.exists():
            (self.site / ".streamlit").mkdir(parents=True)
            (self.site / "static").mkdir()
            shutil.copyfile(ROOT / "app.py", self.site / "app.py")
            shutil.copyfile(ROOT / ".streamlit" / "config.toml", self.site / ".streamlit" / "config.toml")
        self.port = free_port()
        self.base = f"http://localhost:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "QA_MODEL"}
        env.update(QA_INDEX_DIR=str(index), QA_CORPUS_DIR=str(corpus), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
        self.log = (work / "streamlit.log").open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.headless", "true"], cwd=self.site, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.healthy_after = self._wait()

    def _wait(self, timeout: float = 300) -> float:
        while time.monotonic() - self.started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"streamlit exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2):
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.1)
        raise SystemExit("streamlit did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log.close()


def browser(profile: Path, width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def open_page(driver, base: str) -> float:
    """Seconds from navigation until the question box can be typed in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    start = time.monotonic()
    driver.get(base)
    WebDriverWait(driver, 120, poll_frequency=0.02).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
    return time.monotonic() - start


def ask(driver, question: str) -> tuple[float, float]:
    """(seconds from Enter until the reply is on screen, reply height in window heights)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    before = len(driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']"))
    box = driver.find_element(By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")
    box.send_keys(question)
    start = time.monotonic()
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, 120, poll_frequency=0.02).until(lambda d: d.execute_script(REPLY_READY, before))
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    height = driver.execute_script(
        "const m = document.querySelectorAll('[data-testid=\"stChatMessage\"]');"
        "return m[m.length - 1].getBoundingClientRect().height / window.innerHeight;")
    return elapsed, float(height)


def idle(driver, timeout: float = 60) -> None:
    """Wait until the app has finished its current run (Streamlit's running indicator is gone)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))


def clear(driver) -> None:
    """Empty the conversation (sidebar button), so every timed question renders a page of the same size."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for _ in range(3):
        idle(driver)
        button = next(b for b in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebar'] button")
                      if b.text.strip().endswith("Clear conversation"))
        driver.execute_script("arguments[0].click()", button)
        try:
            WebDriverWait(driver, 10).until(
                lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']"))
            idle(driver)
            return
        except TimeoutException:
            continue
    raise SystemExit("the conversation could not be cleared")


def engine_times(index: Path, questions: list[str]) -> Figure:
    """Retrieval and answer alone (in this process), for the share of the wait the app itself adds."""
    from qa.embed import set_threads
    from qa.engine import Engine

    set_threads(1)
    engine = Engine(index)
    engine.warm_up()
    out = Figure()
    for q in questions:
        start = time.perf_counter()
        engine.ask(q, top_k=5)
        out.add(time.perf_counter() - start)
    return out


def concurrent(server: Server, work: Path, questions: list[str], sessions: int, rounds: int) -> Figure:
    """Enter to reply on screen when ``sessions`` browsers ask at the same moment, each its own question.

    Each browser keeps one page open; before every round it empties its
    conversation, then all press Enter together (a barrier), and each times its
    own reply. Every session asks a different question in every round.
    """
    drivers = []
    try:
        for n in range(sessions):
            drivers.append(browser(work / f"profile-{sessions}-{n}", 1400, 1000))
            open_page(drivers[-1], server.base)
            ask(drivers[-1], "warm up the browser")
        out = Figure()
        lock = threading.Lock()
        failures: list[BaseException] = []

        def one(driver: object, question: str, start: threading.Barrier) -> None:
            try:
                clear(driver)
                start.wait(timeout=300)
                seconds = ask(driver, question)[0]
            except BaseException as exc:  # reported after the round
                start.abort()
                failures.append(exc)
                return
            with lock:
                out.add(seconds)

        for r in range(rounds):
            start = threading.Barrier(sessions)
            threads = [threading.Thread(target=one, args=(d, questions[(r * sessions + n) % len(questions)], start))
                       for n, d in enumerate(drivers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if failures:
                raise SystemExit(f"{sessions} sessions, round {r + 1}: {failures[0]!r}")
        return out
    finally:
        for driver in drivers:
            driver.quit()


def holds(together: dict[int, Figure], limit: float = 3.0) -> int:
    """The most sessions asking at once whose p95 stayed within ``limit`` seconds (and all fewer did too)."""
    best = 0
    for sessions in sorted(together):
        if pct(together[sessions].values, 0.95) > limit:
            break
        best = sessions
    return best


SCALING = [
    "Within one server process the questions take turns: the sentence model encodes one batch at",
    "a time (`qa/embed.py`) and the rest runs under Python's one interpreter lock, so one process",
    "answers with little more than one core, and a question's wait grows with the number asked at",
    "the same moment. The machine's other users add to it (the load average column). To serve more",
    "people at once, run several server processes (one per core, each `streamlit run app.py` on its",
    "own port, or one per machine) over the same index folder, behind a load balancer with sticky",
    "sessions:",
    "",
    "- shared between processes: the index folder. Each generation is written once and never",
    "  changed (an ingest writes a new generation beside it and switches `CURRENT` atomically), and",
    "  every process opens it read-only, so any number can read it; each picks up a new generation",
    "  at its next question;",
    "- per process: the `Engine` with its own copy of the model, the vectors and the title",
    "  vectors, the rendered-page cache, and the conversations, which live in the process's",
    "  memory. A browser must therefore keep reaching the same process (sticky sessions, for",
    "  example by cookie); sent elsewhere it starts an empty conversation;",
    "- one ingest at a time, from any one place: its lock refuses a second writer.",
    "",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--restarts", type=int, default=3, help="server starts for the first-question timing")
    parser.add_argument("--sessions", default="1,3,5,8", help="browsers asking at once, comma-separated counts")
    parser.add_argument("--rounds", type=int, default=4, help="questions each concurrent session asks")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    counts = sorted({int(n) for n in args.sessions.split(",") if n.strip()})
    if any(n < 1 for n in counts):
        parser.error("--sessions takes counts of 1 or more, e.g. 1,3,5,8")
    sys.path.insert(0, str(ROOT))
    from qa.embed import load_embedder
    from qa.ingest import IngestSettings, ingest

    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
                 if line.strip()][: args.questions]
    work = Path(tempfile.mkdtemp(prefix="app-timings-"))
    try:
        corpus = shutil.copytree(ROOT / "corpus", work / "corpus")
        index = work / "index"
        ingest(corpus, index, load_embedder(), settings=IngestSettings(workers=0))

        starts, pages, firsts = Figure(), Figure(), Figure()
        for n in range(args.restarts):
            server = Server(work, corpus, index)
            driver = browser(work / f"profile-first-{n}", 1400, 1000)
            try:
                starts.add(server.healthy_after)
                pages.add(open_page(driver, server.base))
                firsts.add(ask(driver, questions[n % len(questions)])[0])
                print(f"start {n + 1}: healthy {starts.values[-1]:.1f} s, page {pages.values[-1]:.2f} s, "
                      f"first question {firsts.values[-1]:.2f} s, load {load():.1f}", flush=True)
            finally:
                driver.quit()
                server.stop()

        server = Server(work, corpus, index)
        warm = Figure()
        together: dict[int, Figure] = {}
        phone: list[float] = []
        desktop: list[float] = []
        try:
            driver = browser(work / "profile-warm", 1400, 1000)
            try:
                open_page(driver, server.base)
                ask(driver, "warm up the browser")
                for q in questions:
                    clear(driver)
                    seconds, height = ask(driver, q)
                    warm.add(seconds)
                    desktop.append(height)
                print(f"warm: p50 {statistics.median(warm.values):.2f} s, p95 {pct(warm.values, 0.95):.2f} s, "
                      f"load {warm.load_text()}", flush=True)
            finally:
                driver.quit()
            driver = browser(work / "profile-phone", 390, 844)
            try:
                for q in questions[:5]:  # the sidebar is folded on a phone: a fresh page per question
                    open_page(driver, server.base)
                    phone.append(ask(driver, q)[1])
            finally:
                driver.quit()
            for sessions in counts:
                together[sessions] = got = concurrent(server, work, questions, sessions, args.rounds)
                print(f"{sessions} at once: p50 {statistics.median(got.values):.2f} s, "
                      f"p95 {pct(got.values, 0.95):.2f} s, load {got.load_text()}", flush=True)
        finally:
            server.stop()
        engine = engine_times(index, questions)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("Server start to healthy (model and index loaded)", starts),
        ("Page open to question box ready", pages),
        ("First question after start: Enter to reply on screen", firsts),
        (f"Warm questions ({len(warm.values)}): Enter to reply on screen", warm),
        ("Retrieval and answer alone (engine, same questions)", engine),
    ]
    held = holds(together)
    lines = [
        "# App timings",
        "",
        "Measured by `bench/app_timings.py` in headless Chromium (1400×1000) against `streamlit run app.py`",
        "on the sample corpus, with the bundled all-MiniLM-L6-v2 model. \"Reply on screen\" is from",
        "pressing Enter in the question box to the reply's first source heading (or notice) being",
        "inside the window. Each warm question is asked in an emptied conversation, so every page",
        "has the same size; the first question is the first one typed after a fresh server start.",
        "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. It is shared:"),
        "the last column is the one-minute load average (runnable processes of all users, including the",
        "browsers measured; 2 means both cores busy) read as each timing of the row was taken, lowest-highest.",
        "",
        "| what | n | p50 (s) | p95 (s) | load average |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, fig in rows:
        if fig.values:
            lines.append(f"| {name} | {len(fig.values)} | {statistics.median(fig.values):.2f} | "
                         f"{pct(fig.values, 0.95):.2f} | {fig.load_text()} |")
    lines += [
        "",
        "Height of one reply (question and answer with five sources, cards folded), in window heights:",
        "",
        "| window | n | median | max |",
        "| --- | --- | --- | --- |",
        f"| desktop 1400×1000 | {len(desktop)} | {statistics.median(desktop):.1f} | {max(desktop):.1f} |" if desktop else "",
        f"| phone 390×844 | {len(phone)} | {statistics.median(phone):.1f} | {max(phone):.1f} |" if phone else "",
        "",
        "The model and index load while the server starts (the app's `st.App` start-up hook), so the",
        "server answers its health check only once they are ready, and the first question costs",
        "what any other does.",
        "",
    ]
    if together:
        lines += [
            "## Several users at once",
            "",
            "One server; N browsers, each with its page open, press Enter at the same moment, each on its own",
            f"question, {args.rounds} times (conversations emptied between rounds). Enter to reply on screen, per",
            "question:",
            "",
            "| sessions at once | questions timed | p50 (s) | p95 (s) | load average |",
            "| --- | --- | --- | --- | --- |",
        ]
        for sessions, fig in sorted(together.items()):
            lines.append(f"| {sessions} | {len(fig.values)} | {statistics.median(fig.values):.2f} | "
                         f"{pct(fig.values, 0.95):.2f} | {fig.load_text()} |")
        lines += [
            "",
            (f"At this load, p95 stays within 3 s up to {held} session{'s' if held != 1 else ''} asking at once."
             if held else "At this load, p95 passes 3 s even with one session asking at a time."),
            "",
        ]
        lines += SCALING
    text = "\n".join(line for line in lines if line is not None)
    print(text)
    if not args.no_write:
        DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
