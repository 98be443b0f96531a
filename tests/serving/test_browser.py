"""The web page in headless Chromium against a running ``polymodal serve``: fill the form, upload
a picture and a clip, record from the (fake) microphone, predict, read the label and the bars;
search an index and read the results. Screenshots of both pages go to the test's temporary folder,
or to ``$POLYMODAL_SCREENSHOTS`` when set (``POLYMODAL_SCREENSHOTS=docs/figures`` renews the docs' figures)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

import live_service as live

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                "(apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> Path:
    """Where the screenshots go: ``$POLYMODAL_SCREENSHOTS``, else a temporary folder."""
    chosen = os.environ.get("POLYMODAL_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(served):
    process, url = live.start(str(served.classifier), str(served.aligned), "--index", str(served.index))
    yield url
    live.stop(process)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1180,1000",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _bars(driver, chart: str) -> dict[str, float]:
    return {b.get_attribute("data-name"): float(b.get_attribute("data-value")) for b in _css(driver, f"#{chart} .bar")}


def _status(driver) -> str:
    return _css(driver, "#status")[0].text


def test_predict_from_the_form_with_uploads_and_a_recording(server, browser, served, data_dir, figures):
    picture, clip = served.data / "d3.png", data_dir / "fsdd" / "3_jackson_7.wav"
    browser.get(f"{server}/?try=model:digits")
    _wait(browser, lambda d: _css(d, 'textarea[data-column="caption"]'))
    _css(browser, 'textarea[data-column="caption"]')[0].send_keys("a three")
    _css(browser, 'input[data-column="size"]')[0].send_keys("3")
    _css(browser, 'input[type="file"][data-column="image"]')[0].send_keys(str(picture))
    _css(browser, 'input[type="file"][data-column="audio"]')[0].send_keys(str(clip))
    _wait(browser, lambda d: (_css(d, "img.preview")[0].get_attribute("src") or "").startswith("blob:"))
    _css(browser, "#predict")[0].click()
    _wait(browser, lambda d: _status(d) == "done" or "error" in (_css(d, "#status")[0].get_attribute("class") or ""))
    assert _status(browser) == "done", _status(browser)
    label = _css(browser, "#label")[0].text
    probabilities, importance = _bars(browser, "probabilities"), _bars(browser, "importance")

    expected = httpx.post(f"{server}/v1/models/digits/predict",
                          data={"rows": json.dumps([{"caption": "a three", "size": 3}])},
                          files=[("image", ("p.png", picture.read_bytes())), ("audio", ("c.wav", clip.read_bytes()))]
                          ).json()["predictions"][0]
    assert label == f"label: {expected['label']}"
    assert probabilities == pytest.approx(expected["probabilities"], abs=1e-6)
    assert set(importance) == {"audio", "caption", "image", "tabular"}
    top = _css(browser, "#probabilities .bar.top .name")[0].text
    assert top == expected["label"]
    browser.save_screenshot(str(figures / "serving_predict.png"))

    # The record button: the fake microphone's tone, encoded as 16-bit PCM WAV in the page.
    record = _css(browser, 'button.record[data-column="audio"]')[0]
    record.click()
    _wait(browser, lambda d: record.text == "Stop")
    import time

    time.sleep(1.2)
    record.click()
    _wait(browser, lambda d: _status(d).startswith("recorded") or "error" in _css(d, "#status")[0].get_attribute("class"))
    assert _status(browser).startswith("recorded"), _status(browser)
    _css(browser, "#predict")[0].click()
    _wait(browser, lambda d: _status(d) == "done" or "error" in (_css(d, "#status")[0].get_attribute("class") or ""))
    assert _status(browser) == "done", _status(browser)
    assert "audio" not in _css(browser, "#notes")[0].text  # the recording was used, not absent or skipped


def test_search_an_index_and_see_the_items(server, browser, figures):
    browser.set_window_size(1180, 1180)  # room for two rows of results in the screenshot
    browser.get(f"{server}/?try=index:pictures")
    _wait(browser, lambda d: _css(d, 'textarea[data-column="text"]'))
    _css(browser, 'textarea[data-column="text"]')[0].send_keys("a three")
    k = _css(browser, "#k")[0]
    k.clear()
    k.send_keys("8")
    _css(browser, "#search")[0].click()
    _wait(browser, lambda d: _status(d) == "8 results" or "error" in (_css(d, "#status")[0].get_attribute("class") or ""))
    assert _status(browser) == "8 results", _status(browser)
    shown = [(li.get_attribute("data-id"), float(li.find_element("css selector", ".score").text))
             for li in _css(browser, "#result-list li")]
    expected = httpx.post(f"{server}/v1/indexes/pictures/search", json={"text": "a three", "k": 8}).json()["results"]
    assert [i for i, _ in shown] == [r["id"] for r in expected]
    assert [s for _, s in shown] == pytest.approx([r["score"] for r in expected], abs=1e-3)
    _wait(browser, lambda d: all(img.get_attribute("naturalWidth") not in (None, "0")
                                 for img in _css(d, "#result-list img")) and len(_css(d, "#result-list img")) == 8)
    browser.save_screenshot(str(figures / "serving_search.png"))
    _css(browser, "#result-list li button")[0].click()  # more like the first result
    _wait(browser, lambda d: _status(d) == "8 results" and _css(d, "#result-list li")[0].get_attribute("data-id")
          != shown[0][0])
