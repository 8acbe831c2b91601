"""The leaderboard page in a real headless browser (Debian's chromium and chromium-driver,
selenium from the ``browser`` extra; ``.ci/run`` installs both): it loads without console
errors, sorting by a column reorders the rows, the numbers shown are those of the result
files, and a screenshot is kept (``$PASE_GYM_ARTIFACTS``, default ``artifacts/``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pase_gym.harness.board import COLUMNS, collect, write_board
from pase_gym.harness.metrics import summarise

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser extra is not installed")
By = pytest.importorskip("selenium.webdriver.common.by").By

ROOT = Path(__file__).resolve().parents[2]
RESULTS = [ROOT / "benchmarks" / "results" / s / "results.jsonl" for s in ("paper", "unseen")]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()


def _column(driver, index: int) -> list[str]:  # type: ignore[no-untyped-def]
    rows = driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in rows]


def test_the_board_page_in_a_browser(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    board = collect(RESULTS, ROOT / "leaderboard" / "submissions")
    write_board(board, tmp_path)
    browser.get((tmp_path / "index.html").as_uri())
    assert browser.title == "pase-gym leaderboard"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

    # the numbers shown are those of the result files
    records = [json.loads(x) for p in RESULTS for x in p.read_text().splitlines()]
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#board thead th")]
    column = headers.index(f"{COLUMNS[0][1]} (paper)")
    shown = dict(zip(_column(browser, 1), _column(browser, column), strict=True))
    paper = summarise([r for r in records if r["suite"] == "paper"])
    for entry in board.entries:
        mean = paper[entry.agent]["safe_success"].mean
        assert shown[entry.submission].startswith(f"{mean:.2f} ["), (entry.submission, shown)

    # sorting by a column reorders the rows, descending then ascending
    mttr = headers.index("MTTR (s) (paper)")
    header = browser.find_elements(By.CSS_SELECTOR, "#board thead th")[mttr]
    header.click()
    values = [float(v.split()[0]) for v in _column(browser, mttr) if v != "n/a"]
    assert values == sorted(values, reverse=True) and len(set(values)) > 1
    header.click()
    values = [float(v.split()[0]) for v in _column(browser, mttr) if v != "n/a"]
    assert values == sorted(values)

    artifacts = Path(os.environ.get("PASE_GYM_ARTIFACTS", ROOT / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(artifacts / "leaderboard.png"))

    # the filter hides the rows that do not match
    box = browser.find_element(By.ID, "filter")
    box.send_keys("oracle")
    visible = [
        r for r in browser.find_elements(By.CSS_SELECTOR, "#board tbody tr") if r.is_displayed()
    ]
    assert len(visible) == 1 and "oracle" in visible[0].text
