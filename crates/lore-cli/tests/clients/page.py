"""The web page in headless Chromium: load, upload a file, ask about it, see the streamed answer
and its source, give a thumbs down with a correction. Usage: page.py BASE_URL FILE (LORE_PAGE_SCREENSHOT=PNG saves
the page at the end)"""
import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

base, document = sys.argv[1:3]
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}"]:
    options.add_argument(flag)
browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    browser.get(base + "/")
    assert browser.title == "Lore", browser.title
    wait = WebDriverWait(browser, 600)

    # Upload through the file input behind the drop zone.
    browser.find_element(By.ID, "file-input").send_keys(document)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#upload-status.upload-done")))
    status = browser.find_element(By.ID, "upload-status").text
    assert "Stored 1 new" in status, status
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, '#documents li[data-source="lighthouse.md"]')))

    # Ask; the answer streams in (server-sent events read by fetch), then its sources.
    browser.find_element(By.ID, "question").send_keys("Who built the harbour lighthouse?")
    browser.find_element(By.ID, "ask").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".answer.complete")))
    answer = browser.find_element(By.CSS_SELECTOR, ".answer .answer-text").text
    print("answer:", answer, file=sys.stderr)
    assert answer.strip(), "no answer shown"
    sources = browser.find_elements(By.CSS_SELECTOR, ".answer .source")
    assert sources, "no sources shown"
    assert "lighthouse.md" in sources[0].text, sources[0].text
    sources[0].click()
    passage = sources[0].find_element(By.CSS_SELECTOR, ".passage")
    assert passage.is_displayed() and "Agnes Thornbury" in passage.text, passage.text

    # Thumbs down with a correction.
    browser.find_element(By.CSS_SELECTOR, ".answer .thumb-down").click()
    browser.find_element(By.CSS_SELECTOR, ".answer .correction").send_keys("Agnes Thornbury built it in 1874.")
    browser.find_element(By.CSS_SELECTOR, ".answer .send-feedback").click()
    wait.until(lambda b: "recorded" in b.find_element(By.CSS_SELECTOR, ".answer .feedback-status").text)
    notice = browser.find_element(By.ID, "notice")
    assert not notice.is_displayed(), notice.text
    if os.environ.get("LORE_PAGE_SCREENSHOT"):
        browser.set_window_size(1400, 900)
        browser.save_screenshot(os.environ["LORE_PAGE_SCREENSHOT"])
    print("page: ok", file=sys.stderr)
finally:
    browser.quit()
