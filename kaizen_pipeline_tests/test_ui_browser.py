"""The Dagster UI on demo data, in a real headless Chromium: the asset graph loads, a chart decodes,
market_prices' checks show, and the Automation page lists the schedules.

Skips with the reason where Debian's chromium, its chromedriver or selenium is missing (`.ci/run`
installs them). Screenshots of every page land in the test's tmp_path.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaizen_pipeline_tests.demo_home import demo_home, free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)"
    if not Path(CHROMEDRIVER).exists():
        return "chromedriver is not installed (apt-get install chromium-driver; .ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A webserver on 127.0.0.1 over a Dagster home where the 15-minute cycle ran over two days."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("ui-home")
    env = demo_home(home)
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "dagster"), "instance", "migrate"], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    done = subprocess.run(
        [str(bin_dir / "kaizen"), "backfill", "--days", "2", "--job", "cycle_job"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    port = free_port()
    log = (home / "webserver.log").open("w")
    server = subprocess.Popen(
        [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", "kaizen_pipeline.definitions"],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the webserver did not come up: {(home / 'webserver.log').read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(ui: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, url: str, expect: str | tuple[str, ...], shot: Path, timeout: float = 60) -> str:
    """Load ``url``, close Dagster's what's-new dialog if it shows, wait for every ``expect`` in the page text
    (the graph renders its nodes and their statuses in turns: wait for all that is asserted)."""
    wanted = (expect,) if isinstance(expect, str) else expect
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)

    def shown(d: Any) -> bool:
        for button in d.find_elements(
            By.XPATH, "//button[normalize-space()='Skip' or normalize-space()='Dismiss']"
        ):
            with contextlib.suppress(Exception):  # the dialog may close between finding and clicking
                button.click()
        text = d.find_element(By.TAG_NAME, "body").text
        return all(w in text for w in wanted)

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(shown)
    finally:
        driver.save_screenshot(str(shot))
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_the_asset_graph_loads(ui: str, browser: Any, tmp_path: Path) -> None:
    text = _open(browser, f"{ui}/asset-groups", "research", tmp_path / "lineage.png")
    assert {"ingest", "research", "backtest", "kaizen", "flags", "experiments", "ops"} <= set(text.split())
    group = f"{ui}/locations/kaizen_pipeline.definitions/asset-groups/ingest"  # -m names the location
    text = _open(
        browser, group, ("trade_volumes", "polymarket_markets", "Materialized"), tmp_path / "ingest.png"
    )
    assert "polymarket_markets" in text and "Materialized" in text


def test_a_chart_bearing_asset_shows_its_chart(ui: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, f"{ui}/assets/hype_scores", "hype_vs_price", tmp_path / "asset.png")
    innermost = "//*[normalize-space()='[Show Markdown]' and not(*[normalize-space()='[Show Markdown]'])]"
    links = browser.find_elements(By.XPATH, innermost)
    assert links, "the chart's markdown link is missing from the asset page"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", links[-1])

    def decoded(d: Any) -> int:
        return int(
            d.execute_script(
                "return Math.max(0, ...Array.from(document.images)"
                ".filter(i => i.src.startsWith('data:image/png')).map(i => i.complete ? i.naturalWidth : 0));"
            )
        )

    try:
        width = WebDriverWait(browser, 30, poll_frequency=0.5).until(decoded)
    finally:
        browser.save_screenshot(str(tmp_path / "chart.png"))
    assert width > 0


def test_market_prices_checks_show(ui: str, browser: Any, tmp_path: Path) -> None:
    text = _open(
        browser, f"{ui}/assets/market_prices?view=checks", "price_data_fresh", tmp_path / "checks.png"
    )
    assert "binary_prices_sum_to_one" in text and "price_history_gaps" in text


def test_the_automation_page_lists_the_schedules(ui: str, browser: Any, tmp_path: Path) -> None:
    text = _open(browser, f"{ui}/automation", "ingest_schedule", tmp_path / "automation.png")
    assert "kaizen_daily_schedule" in text and "alert_sensor" in text
