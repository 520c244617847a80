"""Host-locked HTTP for ``qa fetch``: a requests session with urllib3's Retry, polite pauses, capped downloads.

Retry sleeps, pauses and each request's deadline go through the injected ``sleep`` and ``clock``."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as u3
from urllib3.util.retry import Retry

from ..errors import FetchError
from ..files import create_temp
from . import FetchOptions
from .catalogue import Skip

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 60.0  # seconds; a server asking for a longer wait is given up on
RETRY_STATUSES = (429, 500, 502, 503, 504)


def is_loopback(host: str) -> bool:
    try:
        return host.lower() in ("localhost", "[::1]") or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, allowed: Collection[str]) -> str | None:
    """Why ``url`` may not be fetched, or None: https to a host (or host:port) in ``allowed``; http only to loopback."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not https"
    if parts.username is not None or parts.password is not None:
        return "URL carries credentials"
    if parts.scheme == "http" and not is_loopback(host):
        return f"plain http to {host} (https required except for loopback hosts)"
    netloc = f"[{host}]" if ":" in host else host
    return None if host and {host, netloc, f"{netloc}:{port}"} & set(allowed) else f"host {host} is not allowed"


def _retry(attempts: int, backoff: float, sleep: Callable[[float], None]) -> Retry:
    """Retry 429/5xx and read errors after ``backoff`` (doubling) or the server's Retry-After, if not too long."""

    class PoliteRetry(Retry):
        def sleep(self, response: Any = None) -> None:
            header = response.headers.get("Retry-After") if response is not None else None
            try:
                wait = self.parse_retry_after(header) if header else None
            except u3.InvalidHeader:
                wait = None
            if wait is not None and wait > MAX_RETRY_AFTER:  # give up rather than hang
                raise Skip(f"HTTP {response.status}; Retry-After {header!r} is too long to wait")
            if (wait := backoff * 2 ** (len(self.history) - 1) if wait is None else wait) > 0:
                sleep(wait)

    return PoliteRetry(total=attempts - 1, connect=0, read=attempts - 1, status=attempts - 1, other=0,
                       status_forcelist=RETRY_STATUSES, respect_retry_after_header=True, retry_after_max=sys.maxsize,
                       raise_on_status=False)


class Client:
    """A polite GET client: pauses between requests, retries, checks every hop, caps size and time."""

    def __init__(self, options: FetchOptions, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.options, self.sleep, self.clock = options, sleep, clock
        self._last: float | None = None  # clock() at the previous request, for the pause between requests
        self.session = requests.Session()
        self.session.trust_env = not is_loopback(urllib.parse.urlsplit(options.api_base).hostname or "")  # proxies
        self.session.headers.update({"User-Agent": "evidence-qa-fetch/2 (research use)", "Accept-Encoding": "identity"})
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, HTTPAdapter(max_retries=_retry(options.attempts, options.backoff, sleep)))

    @contextmanager
    def _get(self, url: str, allowed: Collection[str], accept: str) -> Iterator[requests.Response]:
        """The streamed response at ``url``, following only allowed redirects; Skip (or, offline, FetchError)."""
        if self._last is not None and (wait := self.options.pause - (self.clock() - self._last)) > 0:
            self.sleep(wait)
        self._last = self.clock()
        for hop in range(MAX_REDIRECTS + 2):
            if (refusal := check_url(url, allowed) if hop <= MAX_REDIRECTS else "too many redirects") is not None:
                raise Skip(f"refused {'redirect to ' if hop else ''}{url}: {refusal}")
            try:
                response = self.session.get(url, headers={"Accept": accept}, stream=True, allow_redirects=False,
                                            timeout=self.options.timeout)
            except requests.RequestException as exc:
                reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], u3.MaxRetryError) else exc
                if isinstance(reason, u3.NewConnectionError):  # refused, or the name lookup failed
                    raise FetchError(f"cannot reach {urllib.parse.urlsplit(url).hostname}: {str(reason).rsplit(': ')[-1]}; "
                                     "are you offline? Check the connection, or point --api-base at a mirror") from None
                if isinstance(reason, u3.TimeoutError | requests.Timeout):
                    raise Skip(f"timed out after {self.options.timeout:g} s") from None
                raise Skip(f"connection error: {reason}") from None
            if not response.is_redirect:
                break
            url = urllib.parse.urljoin(url, response.headers["Location"])
            response.close()
        with response:
            if (code := response.status_code) >= 400:
                tries = f" (after {n} attempts)" if code in RETRY_STATUSES and (n := self.options.attempts) > 1 else ""
                raise Skip(f"HTTP {code} {response.reason}".strip() + tries)
            yield response

    def _body(self, response: requests.Response, limit: int, started: float, too_large: str) -> Iterator[bytes]:
        """The decoded body in blocks, within ``limit`` bytes and the deadline (read1 makes one socket read at
        most, so even a server sending a byte at a time meets the deadline within one ``timeout``); ``too_large``
        is the reason given for a longer body."""
        size = 0
        while self.clock() - started <= self.options.deadline:
            try:
                block = response.raw.read1(64 * 1024, decode_content=True)
            except (u3.HTTPError, OSError) as exc:
                raise Skip(f"truncated or broken off: {exc}") from None
            if (size := size + len(block)) > limit:
                raise Skip(too_large)
            if not block:
                return
            yield block
        raise Skip(f"took longer than {self.options.deadline:g} s in all (--deadline)")

    def get_json(self, url: str, allowed: Collection[str]) -> Any:
        started = self.clock()
        with self._get(url, allowed, "application/json") as response:
            # A fixed cap, not --max-mb: a catalogue page is a few kilobytes, never a download of the user's choosing.
            data = b"".join(self._body(response, MAX_JSON_BYTES, started,
                                       f"too large: a catalogue page of more than {MAX_JSON_BYTES // 2**20} MiB"))
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:  # the caller names the URL
            raise Skip(f"not valid JSON ({exc})") from None

    def download(self, url: str, allowed: Collection[str], folder: Path) -> tuple[Path, str]:
        """A PDF downloaded into a new ``.fetch-*.part`` file in ``folder``, and its sha256; on any failure
        the part file is removed (a body that broke off is fetched again by the next run)."""
        started = self.clock()
        with self._get(url, allowed, "application/pdf") as response:
            fd, part = create_temp(folder, ".fetch-")
            try:
                digest, head = hashlib.sha256(), b""
                with os.fdopen(fd, "wb") as out:
                    limit = int(self.options.max_mb * 2**20)
                    for block in self._body(response, limit, started, f"too large: more than {limit} bytes (--max-mb)"):
                        head = (head + block[:5])[:5]
                        digest.update(block)
                        out.write(block)
                    if head != b"%PDF-":
                        raise Skip("not a PDF (does not start with %PDF-)")
                    out.flush()
                    os.fsync(out.fileno())
                return part, digest.hexdigest()
            except BaseException:
                part.unlink(missing_ok=True)
                raise
