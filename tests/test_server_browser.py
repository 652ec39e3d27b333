"""The pages of ``chronoledger serve`` in a real browser: headless Chromium
(Debian's, driven by Selenium through Debian's chromium-driver) against the
command itself serving the demo's files on 127.0.0.1.

Pages load with no console error, the world scrubber moves agents, a chart
draws the number of points the API gave.  The screenshots in docs/images/
are the ones these tests take (CHRONOLEDGER_SCREENSHOTS=docs/images writes
them there; otherwise they go to a temporary folder and are checked)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest

from chronoledger import workload
from chronoledger.chronicle import Chronicle

from _server import Server, chromium_paths, make_demo

pytestmark = pytest.mark.timeout(600)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    files = make_demo(tmp_path_factory.mktemp("demo"))
    runs = files.out / "sweep"            # two more cycle runs, to overlay
    runs.mkdir()
    base = workload.generate(20_000, seed=3)
    for k in range(2):
        with Chronicle.open(runs / f"lr-{k}.cmeta", "w", config={"lr": 0.01 * (k + 1)}, initial_seed=k) as ch:
            ch.extend({"timestamp": base["timestamp"], "phase": base["phase"],
                       "loss_value": base["loss"] * (1 + k / 4), "coherence": base["coherence"],
                       "tensor_signature": base["tensor_signature"],
                       "action_code": np.where(base["action_present"], base["action_code"].astype(np.int16),
                                               np.int16(-1)),
                       "seed_state": base["seed_state"]}, labels={"phase": list(workload.PHASES)})
    server = Server(files.serve_args(), tmp_path_factory.mktemp("log") / "serve.log")
    yield files, server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = chromium_paths()
    os.environ.setdefault("SE_OFFLINE", "true")       # Selenium Manager: never download a browser or driver
    from selenium import webdriver                    # the test extra's; imported once Chromium is known to be here
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    yield driver
    driver.quit()


def open_page(driver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CHRONOLEDGER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    return path


def test_every_page_loads_with_no_console_error(site, browser, tmp_path):
    _, server = site
    for page in ("/", "/world", "/runs", "/digest", "/docs"):
        open_page(browser, server.url + page)
        assert browser.find_elements("css selector", "p.error") == [], page
        assert console_errors(browser) == [], page
    open_page(browser, server.url + "/")
    screenshot(browser, "serve-home", tmp_path)


def test_the_world_scrubber_moves_agents_and_an_agent_shows_its_day(site, browser, tmp_path):
    _, server = site
    tl = httpx.get(server.url + "/api/world/timeline").json()["timeline"]
    places = {p["id"]: p["name"] for p in tl["places"]}

    def where(k: int, tick: int) -> str:
        here = None
        for t, p in tl["moves"][k]:
            if t > tick:
                break
            here = p
        return "on the way" if here is None else places[here]

    # an agent and two ticks at which it is in different places
    k, a, b = next((k, a, b) for k in range(len(tl["agents"])) for a in range(len(tl["ticks"]))
                   for b in range(a + 1, len(tl["ticks"])) if where(k, a) != where(k, b))
    name = tl["agents"][k]["name"]
    open_page(browser, server.url + "/world")

    def shown_at(tick: int) -> str:
        browser.execute_script("const s = document.getElementById('scrubber'); s.value = arguments[0];"
                               "s.dispatchEvent(new Event('input'));", tick)
        dot = browser.find_element("css selector", f'.agent[data-agent="{name}"]')
        assert len(browser.find_elements("css selector", ".agent")) == len(tl["agents"])
        return dot.find_element("xpath", "./ancestor::div[@class='place']").get_attribute("data-place")

    assert shown_at(a) == where(k, a)
    assert shown_at(b) == where(k, b)
    assert tl["ticks"][b] in browser.find_element("id", "clock").text
    # the conversations of a tick that has some, with their turns
    talk = tl["conversations"][0]
    shown_at(talk["tick"])
    convs = browser.find_elements("css selector", "#conversations .conv")
    assert len(convs) == sum(c["tick"] == talk["tick"] for c in tl["conversations"])
    assert talk["turns"][0]["text"] in browser.find_element("id", "conversations").text
    changes = browser.find_elements("css selector", "#relationships li[data-kind]")
    assert len(changes) == len(tl["relationships"]["strengthened"]) + len(tl["relationships"]["weakened"])
    screenshot(browser, "serve-world", tmp_path)
    # one agent's day
    browser.find_element("css selector", f'.agent[data-agent="{name}"]').click()
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(browser, 30).until(lambda d: d.find_elements("css selector", "#agent-day table"))
    day = httpx.get(server.url + f"/api/world/agents/{name}", params={"day": tl["day_label"]}).json()["day"]
    assert len(browser.find_elements("css selector", "#agent-day tr")) == len(day["events"])
    assert console_errors(browser) == []


def test_run_charts_draw_the_points_the_api_gives(site, browser, tmp_path):
    _, server = site
    open_page(browser, server.url + "/runs")
    checked = [i.get_attribute("value") for i in browser.find_elements("css selector", "#run-list input")
               if i.is_selected()]
    assert sorted(checked) == ["learner.cmeta", "sweep/lr-0.cmeta", "sweep/lr-1.cmeta"]
    assert browser.find_element("id", "metric").get_attribute("value") == "loss_value"
    lines = browser.find_elements("css selector", "#charts polyline")
    assert [ln.get_attribute("data-series") for ln in lines] == checked
    for ln, run in zip(lines, checked):
        want = httpx.get(f"{server.url}/api/runs/{run}/series",
                         params={"metrics": "loss_value", "points": 2000}).json()["series"]["metrics"]["loss_value"]
        drawn = ln.get_attribute("points").split()
        assert int(ln.get_attribute("data-points")) == len(drawn) == len(want["y"]) <= 2000
    # the phases of one run shaded; full resolution draws every record
    for box in browser.find_elements("css selector", "#run-list input"):
        if box.get_attribute("value") != "sweep/lr-0.cmeta" and box.is_selected():
            box.click()
    browser.execute_script("document.getElementById('full').click()")
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1"
        and len(d.find_elements("css selector", "#charts polyline")) == 1)
    line = browser.find_element("css selector", "#charts polyline")
    assert int(line.get_attribute("data-points")) == 20_000
    assert browser.find_elements("css selector", "#charts rect[data-phase]")
    assert console_errors(browser) == []
    browser.execute_script("document.getElementById('full').click()")
    for box in browser.find_elements("css selector", "#run-list input"):
        if box.get_attribute("value") in checked and not box.is_selected():
            box.click()
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1"
        and len(d.find_elements("css selector", "#charts polyline")) == 3)
    screenshot(browser, "serve-runs", tmp_path)
    # a ticked run that lacks the metric is left out of the chart and named, with no error
    for box in browser.find_elements("css selector", "#run-list input"):
        if box.get_attribute("value") == "world/world-run-1.cmeta":
            box.click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements("id", "skipped-note"))
    assert len(browser.find_elements("css selector", "#charts polyline")) == 3
    assert "world/world-run-1.cmeta" in browser.find_element("id", "skipped-note").text
    assert browser.find_elements("css selector", "p.error") == [] and console_errors(browser) == []


def test_the_behaviour_digest_charts_completions_and_streaks(site, browser, tmp_path):
    _, server = site
    series = httpx.get(server.url + "/api/data/series").json()
    open_page(browser, server.url + "/digest")
    bars = browser.find_elements("css selector", "#completions rect[data-stack]")
    cells = sum(1 for v in series["completions"]["statuses"].values() for x in v if x)
    assert len(bars) == cells
    assert sum(int(b.get_attribute("data-value")) for b in bars) == \
        sum(sum(v) for v in series["completions"]["statuses"].values())
    streaks = browser.find_elements("css selector", "#streaks polyline")
    assert len(streaks) == len(series["streaks"]["habits"])
    assert all(int(s.get_attribute("data-points")) == len(series["streaks"]["dates"]) for s in streaks)
    assert "habit_stats.total_habits" in browser.find_element("id", "metrics").text
    assert console_errors(browser) == []
    screenshot(browser, "serve-digest", tmp_path)


def test_a_world_without_runs_says_so_without_an_error(browser, tmp_path):
    from chronoledger.world import store
    db = tmp_path / "empty-world.db"
    conn = store.connect(db)                 # the world's tables and an agent, no run yet
    store.seed_agent(conn, "Ava")
    conn.close()
    server = Server(["--world", str(db)], tmp_path / "serve.log")
    try:
        open_page(browser, server.url + "/world")
        assert "no run with events yet" in browser.find_element("id", "no-runs").text
        assert browser.find_elements("css selector", "p.error") == [] and console_errors(browser) == []
    finally:
        server.stop()
