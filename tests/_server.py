"""What the server's tests share: the demo's files, a real server
(``chronoledger serve`` in a process of its own on a free port of
127.0.0.1), and headless Chromium with its driver.

Chromium comes from Debian (``chromium`` and ``chromium-driver``).  When it
is missing, :func:`chromium_paths` installs it with apt-get where that can
be done (root, apt-get on PATH); elsewhere the browser tests are skipped
with the command that installs it, unless CHRONOLEDGER_REQUIRE_BROWSER is
set (``.ci/run`` sets it), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chronoledger import demo

TOKEN = "test-token-0123456789"
INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"


@dataclass
class DemoFiles:
    out: Path
    user: Path
    tables: Path
    runtime: Path
    world: Path

    def serve_args(self) -> list[str]:
        return ["--user", str(self.user), "--tables", str(self.tables), "--runtime", str(self.runtime),
                "--world", str(self.world), "--runs", str(self.out)]


def make_demo(folder: Path) -> DemoFiles:
    report = demo.run(folder, records=2000, cycles=200)
    assert report.ok, report.text()
    return DemoFiles(out=report.out_dir, user=Path(report.section("sequence").facts["user"]),
                     tables=Path(report.section("tables").facts["database"]),
                     runtime=Path(report.section("runtime").facts["database"]),
                     world=Path(report.section("world").facts["database"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``chronoledger serve ARGS`` on a free port, stopped by :meth:`stop`."""

    def __init__(self, args: list[str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("CHRONOLEDGER_SERVE_TOKEN", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "chronoledger.cli", "serve", *args,
                                      "--port", str(self.port)], stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(self.url + "/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not answer within 60 s: {log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def chromium_paths() -> tuple[str, str]:
    """(chromium, chromedriver), installed from Debian's packages when missing and possible."""
    def found() -> tuple[str | None, str | None]:
        return (shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver"))

    browser, driver = found()
    if (browser is None or driver is None) and hasattr(os, "geteuid") and os.geteuid() == 0 \
            and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True, timeout=600)
        subprocess.run(INSTALL.split(), env=env, check=False, capture_output=True, timeout=900)
        browser, driver = found()
    if browser is None or driver is None:
        message = f"headless Chromium and its driver are not installed: {INSTALL} (as root, on Debian)"
        if os.environ.get("CHRONOLEDGER_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver
