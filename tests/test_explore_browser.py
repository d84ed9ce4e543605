"""The explorer page in a real browser: a slider moves the path, a stub's message shows, the
console stays clean. Headless Chromium from the system (Debian's chromium and chromium-driver),
driven by Selenium; skipped with the reason when any of them is missing.

Saves a screenshot to docs/explore-optimizers.png.
"""

import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[1]

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install selenium)")
if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
    pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
if not Path(CHROMEDRIVER).is_file():
    pytest.skip(f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from course.explore.server import serve_in_thread, warm_up  # noqa: E402


@pytest.fixture(scope="module")
def page():
    warm_up()
    server, thread = serve_in_thread("127.0.0.1", 0)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1150,1080", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except Exception as exc:  # a driver that does not match the browser, no display libraries
        server.shutdown()
        pytest.skip(f"headless Chromium did not start: {type(exc).__name__}: {str(exc)[:200]}")
    driver.get(server.url)
    yield driver
    driver.quit()
    server.shutdown()
    server.server_close()


def wait(driver, condition, timeout=30):
    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def first_path(driver):
    # read in one script: the page redraws its SVG on every answer
    return driver.execute_script(
        "const p = document.querySelector('#path-0'); return p && p.getAttribute('points');")


def banner(driver):
    return driver.execute_script(
        "const b = document.querySelector('#banner'); return b ? b.textContent : '';")


def test_a_slider_moves_the_path_and_a_stub_says_so(page):
    driver = page
    before = wait(driver, first_path)
    assert len(before.split()) == 101  # 100 steps and the start
    assert driver.find_elements(By.CSS_SELECTOR, "path.contour")

    card = driver.find_element(By.CSS_SELECTOR, '.card[data-card="0"]')
    slider = card.find_element(By.CSS_SELECTOR, "input.lr")
    driver.execute_script(
        "arguments[0].value = -1.7; arguments[0].dispatchEvent(new Event('input'));", slider)
    wait(driver, lambda d: first_path(d) not in (None, before))

    steps = driver.find_element(By.ID, "steps")
    driver.execute_script(
        "arguments[0].value = 40; arguments[0].dispatchEvent(new Event('input'));", steps)
    wait(driver, lambda d: (first_path(d) or "").count(" ") == 40)

    # the second card: momentum with the solution, compared with Keras
    second = driver.find_element(By.CSS_SELECTOR, '.card[data-card="1"]')
    impl = second.find_element(By.CSS_SELECTOR, "select.impl")
    driver.execute_script("arguments[0].value = 'solution'; "
                          "arguments[0].dispatchEvent(new Event('change'));", impl)
    status = second.find_element(By.CSS_SELECTOR, ".status")
    wait(driver, lambda d: "largest gap" in status.text)
    assert "never more than" in status.text
    driver.save_screenshot(str(ROOT / "docs" / "explore-optimizers.png"))

    # the first card (Adam) switched to "yours": the stub's message, not a frozen page
    impl = card.find_element(By.CSS_SELECTOR, "select.impl")
    driver.execute_script("arguments[0].value = 'yours'; "
                          "arguments[0].dispatchEvent(new Event('change'));", impl)
    status = card.find_element(By.CSS_SELECTOR, ".status")
    wait(driver, lambda d: "not implemented yet" in status.text)
    assert status.text == "Adam in exercises/ch06_adam.py is not implemented yet"
    assert first_path(driver) is None

    # the saddle: SGD diverges, and the plot says so
    driver.execute_script("arguments[0].value = 'sgd'; "
                          "arguments[0].dispatchEvent(new Event('change'));",
                          card.find_element(By.CSS_SELECTOR, "select.optimizer"))
    driver.execute_script("arguments[0].value = 'keras'; "
                          "arguments[0].dispatchEvent(new Event('change'));", impl)
    surface = driver.find_element(By.ID, "surface")
    driver.execute_script("arguments[0].value = 'saddle'; "
                          "arguments[0].dispatchEvent(new Event('change'));", surface)
    slider = card.find_element(By.CSS_SELECTOR, "input.lr")
    driver.execute_script(
        "arguments[0].value = -0.5; arguments[0].dispatchEvent(new Event('input'));", slider)
    wait(driver, lambda d: "diverges" in banner(d))

    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
