"""The app in a real browser: Playwright drives Debian's Chromium (never a downloaded one).

Opens the page, drags a Designer slider and gets new audio, clicks the Explorer map and hears the note,
uploads a clip to the Upsampler and gets the 44.1 kHz result; a screenshot of each tab is saved.

Screenshots go to ``$HUMMINGFACE_SCREENSHOTS`` if set, else into the test's temporary folder. README's come
from this test on the shipped weights::

    HUMMINGFACE_TEST_WEIGHTS=checkpoints HUMMINGFACE_SCREENSHOTS=docs/screenshots pytest tests/test_browser.py
"""

import os
import re
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/lib/chromium/chromium")  # the real binary behind Debian's /usr/bin/chromium wrapper
EXAMPLE = ROOT / "assets" / "examples" / "pop-0011-01-8k.flac"
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def page_url(tiny_weights):
    import app
    from hummingface.studio import Studio

    weights = os.environ.get("HUMMINGFACE_TEST_WEIGHTS", str(tiny_weights))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = app.build_app(Studio.load(weights, "cpu"))
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(page_url):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(page_url)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("HUMMINGFACE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def audio_link(page, elem_id: str):
    return page.locator(f"#{elem_id} [data-testid=download-link]")


def wait_for_new_link(page, elem_id: str, old: str | None) -> str:
    """Wait until the audio output ``elem_id`` offers a file other than ``old``; return its URL."""
    link = audio_link(page, elem_id)
    link.wait_for(state="attached")
    page.wait_for_function(
        "([sel, old]) => { const a = document.querySelector(sel); return a && a.href && a.href !== old; }",
        arg=[f"#{elem_id} [data-testid=download-link]", old or ""],
        timeout=TIMEOUT_MS,
    )
    return link.get_attribute("href")


def wait_until_idle(page) -> None:
    """Wait until no Gradio output shows its pending overlay (each status tracker hidden again), so a screenshot
    shows the finished outputs, not their dimmed previous values."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=status-tracker]')].every(e => e.classList.contains('hide'))",
        timeout=TIMEOUT_MS,
    )


def wait_for_keyboard_sound(page) -> None:
    """Wait until the Designer's keyboard holds the samples of the sound on screen."""
    page.wait_for_function("sel => document.querySelector(sel).textContent.includes('samples')",
                           arg="#design-keyboard .hf-name", timeout=TIMEOUT_MS)


def test_designer_slider_gives_new_audio(page, shots):
    first = wait_for_new_link(page, "design-audio", None)  # the page's first note, decoded on load
    track = page.locator("#slider-0 input[type=range]")
    box = track.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.5 + 0.035 * step), y)
    page.mouse.up()
    assert float(page.locator("#slider-0 input[type=number]").input_value()) > 1.0
    second = wait_for_new_link(page, "design-audio", first)
    assert second != first
    wait_for_keyboard_sound(page)
    wait_until_idle(page)
    page.screenshot(path=str(shots / "designer.png"), full_page=True)


def test_explorer_click_plays_a_note(page, shots):
    page.get_by_role("tab", name="Latent Explorer").click()
    picture = page.locator("#map img")
    picture.wait_for(state="visible")
    box = picture.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    labels = page.locator("#explore-labels textarea")
    page.wait_for_function("sel => document.querySelector(sel).value.includes('pitch')",
                           arg="#explore-labels textarea", timeout=TIMEOUT_MS)
    assert re.search(r"pitch \d+", labels.input_value())
    wait_for_new_link(page, "explore-reconstruction", None)
    wait_until_idle(page)
    page.screenshot(path=str(shots / "explorer.png"), full_page=True)


def test_upsampler_upload_gives_44k1(page, shots, tmp_path):
    page.get_by_role("tab", name="Upsampler").click()
    page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
    page.wait_for_function("sel => document.querySelector(sel).value.includes('8000 Hz')",
                           arg="#upload-info textarea", timeout=TIMEOUT_MS)
    page.locator("#run-upsample").click()
    wait_for_new_link(page, "upsampled", None)
    wait_until_idle(page)
    page.screenshot(path=str(shots / "upsampler.png"), full_page=True)


def test_note_generator_tab(page, shots):
    page.get_by_role("tab", name="Note Generator").click()
    page.locator("#generate").click()
    wait_for_new_link(page, "gen-audio", None)
    wait_until_idle(page)
    page.screenshot(path=str(shots / "generator.png"), full_page=True)


def notes_started(page, elem_id: str) -> int:
    return int(page.locator(f"#{elem_id} .hf-keyboard").get_attribute("data-notes"))


def test_keyboard_plays_from_screen_and_computer_keys_and_exports_a_zip(page, shots, tmp_path):
    page.get_by_role("tab", name="Designer").click()
    keyboard = page.locator("#design-keyboard")
    wait_for_keyboard_sound(page)
    assert keyboard.locator(".hf-key").count() >= 37  # at least three octaves on screen
    before = notes_started(page, "design-keyboard")
    for note in (48, 52, 55):  # C3, E3, G3: mouse down and up on each key
        key = keyboard.locator(f'[data-note="{note}"]')
        key.hover()
        page.mouse.down()
        page.mouse.up()
    assert notes_started(page, "design-keyboard") == before + 3
    page.mouse.move(5, 5)
    for key in ("z", "x", "q", "w"):  # lower and upper QWERTY rows
        page.keyboard.press(key)
    page.keyboard.press("=")  # octave up, then a key there
    page.keyboard.press("z")
    assert notes_started(page, "design-keyboard") == before + 8
    assert keyboard.locator(".hf-octave").text_content() == "C4"
    keyboard.screenshot(path=str(shots / "keyboard.png"))

    page.get_by_text("Export instrument", exact=True).first.click()
    page.locator("#design-export").click()
    link = page.locator("#design-export-file a[download]").first
    link.wait_for(state="attached")
    with page.expect_download() as download:
        link.click()
    target = tmp_path / "instrument.zip"
    download.value.save_as(target)
    import zipfile

    assert any(name.endswith(".sfz") for name in zipfile.ZipFile(target).namelist())


def test_screenshots_were_written(shots):
    names = sorted(path.name for path in shots.glob("*.png"))
    assert names == ["designer.png", "explorer.png", "generator.png", "keyboard.png", "upsampler.png"]
