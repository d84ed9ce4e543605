"""The explorer page in a real browser: a slider moves the path, a stub's message shows, the
console stays clean. Headless Chromium from the system (Debian's chromium and chromium-driver),
driven by Selenium; skipped with the reason when any of them is missing.

Each view's test saves its screenshot, docs/explore-<view>.png (the README shows them).
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


def set_value(driver, element, value, event="input"):
    driver.execute_script(f"arguments[0].value = arguments[1]; "
                          f"arguments[0].dispatchEvent(new Event('{event}'));", element, value)


def attribute(driver, selector, name="points"):
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);",
        selector, name)


def text(driver, selector):
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector)


def severe(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_schedules_view(page):
    driver = page
    driver.execute_script("location.hash = '#schedules';")
    before = wait(driver, lambda d: attribute(d, "#sched-warmup_cosine"))
    assert len(before.split()) == 1000
    wait(driver, lambda d: attribute(d, "#range-curve"), timeout=60)
    assert attribute(driver, "#range-suggestion", "x1")
    assert "suggested rate" in text(driver, "#range-status")
    set_value(driver, driver.find_element(By.ID, "sched-warmup-input"), 400)
    wait(driver, lambda d: attribute(d, "#sched-warmup_cosine") not in (None, before))
    set_value(driver, driver.find_element(By.ID, "sched-impl"), "solution", "change")
    wait(driver, lambda d: "same as Keras" in text(d, "#sched-status-warmup_cosine"))
    driver.save_screenshot(str(ROOT / "docs" / "explore-schedules.png"))
    set_value(driver, driver.find_element(By.ID, "sched-impl"), "yours", "change")
    wait(driver, lambda d: "not implemented yet" in text(d, "#sched-status-warmup_cosine"), timeout=90)
    assert attribute(driver, "#sched-warmup_cosine") is None
    set_value(driver, driver.find_element(By.ID, "range-impl"), "yours", "change")
    wait(driver, lambda d: "LRFinder in exercises/ch07_lr_decay.py is not implemented yet"
         in text(d, "#range-status"), timeout=60)
    assert severe(driver) == []


def plots_fit(driver):
    """Each scaling plot lies inside its figure and the window (nothing cut off at the edges)."""
    return driver.execute_script("""
        return ['raw', 'standardized'].every((k) => {
          const svg = document.querySelector('#scale-plot-' + k).getBoundingClientRect();
          const box = document.querySelector('#scale-plot-' + k).parentElement.getBoundingClientRect();
          return svg.width > 250 && svg.left >= box.left - 1 && svg.right <= box.right + 1 &&
                 svg.right <= document.documentElement.clientWidth;
        });""")


def test_scaling_view(page):
    driver = page
    driver.execute_script("location.hash = '#scaling';")
    raw = wait(driver, lambda d: attribute(d, "#scale-path-raw"), timeout=60)
    before = wait(driver, lambda d: attribute(d, "#scale-path-standardized"))
    assert len(before.split()) == 101
    assert "condition number" in text(driver, "#scale-status-raw")
    # the lesson at the default settings, in the words under the plots
    assert text(driver, "#scale-verdict-raw").startswith("Misses the minimum")
    assert text(driver, "#scale-verdict-standardized").startswith("Reaches the minimum")
    assert "not to scale" in text(driver, "#scale-stretch-raw")
    assert attribute(driver, "#scale-minimum-standardized", "cx")
    assert plots_fit(driver)
    driver.save_screenshot(str(ROOT / "docs" / "explore-scaling.png"))
    driver.set_window_size(1000, 1080)
    try:
        wait(driver, plots_fit, timeout=5)
    finally:
        driver.set_window_size(1150, 1080)
    set_value(driver, driver.find_element(By.ID, "scale-lr-standardized"), -1.5)
    wait(driver, lambda d: attribute(d, "#scale-path-standardized") not in (None, before))
    spread = text(driver, "#scale-status-standardized")
    set_value(driver, driver.find_element(By.ID, "scale-batch"), 1)
    wait(driver, lambda d: "Batch 2:" in text(d, "#scale-status-standardized"))
    assert text(driver, "#scale-status-standardized") != spread
    assert attribute(driver, "#scale-path-raw") == raw  # the batch size moves the clouds only
    set_value(driver, driver.find_element(By.ID, "scale-lr-raw"), -6.2)
    wait(driver, lambda d: "diverges" in text(d, "#scale-status-raw"))
    set_value(driver, driver.find_element(By.ID, "scale-lr-raw"), -6.5)
    wait(driver, lambda d: "diverges" not in text(d, "#scale-status-raw"))
    # the correlated house prices: standardized contours stay elongated
    set_value(driver, driver.find_element(By.ID, "scale-data"), "house_prices", "change")
    wait(driver, lambda d: "bedrooms" in text(d, "#scale-data-note")
         and "condition number 43" in text(d, "#scale-status-standardized"))
    set_value(driver, driver.find_element(By.ID, "scale-impl"), "yours", "change")
    wait(driver, lambda d: "Standardization in exercises/ch01_feature_scaling.py is not implemented "
         "yet" in text(d, "#scale-status-standardized"), timeout=90)
    assert severe(driver) == []


def test_the_static_build_served_by_a_plain_file_server_draws_paths(page, tmp_path):
    import functools
    import http.server
    import threading

    from test_explore import SMALL_GRID

    from course.explore import build

    build.build(tmp_path, grids=SMALL_GRID)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    driver = page
    try:
        driver.get(f"http://127.0.0.1:{files.server_address[1]}/index.html")
        before = wait(driver, first_path)
        assert len(before.split()) == 101
        assert driver.find_element(By.ID, "static-note").is_displayed()
        card = driver.find_element(By.CSS_SELECTOR, '.card[data-card="0"]')
        options = driver.execute_script("return [...arguments[0].options].map(o => o.value);",
                                        card.find_element(By.CSS_SELECTOR, "select.impl"))
        assert options == ["keras"]  # the build holds Keras's answers only
        # the slider snaps to the grid's other rate, and the path is read from its file
        set_value(driver, card.find_element(By.CSS_SELECTOR, "input.lr"), -1.4)
        wait(driver, lambda d: first_path(d) not in (None, before))
        assert card.find_element(By.CSS_SELECTOR, ".lr-out").text == "0.03"
        assert severe(driver) == []
    finally:
        files.shutdown()
        files.server_close()
