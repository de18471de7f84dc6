"""A researcher's path in a real browser (Debian's headless Chromium, Selenium, a live server):
refused anonymously with a sign-in link, signs in, lands on the portal, posts the browsable API's
example body and follows the job's uid to its status.

A screenshot of every page is saved under ``test-artifacts/portal/``.
"""

from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.chromium import headless_chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "portal"


class Browser:
    """Chromium on the live server, with the steps a visitor takes."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")

    def text(self, css: str = "body") -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def click_and_wait(self, css: str) -> None:
        """Click what loads a new page, and wait until it has."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        WebDriverWait(self.driver, 60).until(expected_conditions.staleness_of(page))

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.fixture
def browser(live_server: Any, transactional_db: None, tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium on a live server whose database holds the lomas_client application that
    Swagger signs in with: its migration wrote it, but an earlier transactional test may have flushed it."""
    import_module("accounts.migrations.0002_lomas_client").create_lomas_client(apps, None)
    driver = headless_chromium(tmp_path / "chromium")
    try:
        yield Browser(driver, live_server.url)
    finally:
        driver.quit()


def test_a_researcher_signs_in_sees_the_portal_and_runs_the_example_query(browser: Browser, alice: Any) -> None:
    # anonymous: the README's example answers a refusal page, not a crash
    browser.open("/api/get_remaining_budget")
    assert "HTTP 403 Forbidden" in browser.text() and "Failed bearer token verification." in browser.text()
    assert "sign in" in browser.text("#sign-in-hint")
    browser.screenshot("01-anonymous-refused")

    # the sign-in link comes back here; the portal is where a researcher lands otherwise
    browser.open("/portal/")
    assert browser.path() == "/accounts/login/?next=/portal/"
    browser.driver.find_element(By.NAME, "username").send_keys("Alice")
    browser.driver.find_element(By.NAME, "password").send_keys("alice-password")
    browser.screenshot("02-sign-in")
    browser.click_and_wait("input[type=submit]")
    assert browser.path() == "/portal/"
    budget = browser.text("#dataset-PENGUIN .portal-budget")
    assert "ε 10 0 10" in budget and "δ 0.005 0 0.005" in budget
    assert "species string Adelie, Chinstrap, Gentoo no" in browser.text("#dataset-PENGUIN .portal-metadata")
    assert 'dataset_name="PENGUIN"' in browser.text("#client-snippet")
    browser.screenshot("03-portal")

    # the browsable API's form holds a working example on PENGUIN
    browser.open("/api/smartnoise_sql_query")
    content = browser.driver.find_element(By.NAME, "_content").get_attribute("value")
    assert '"dataset_name": "PENGUIN"' in content and "GROUP BY species" in content
    assert "Signed in as Alice" in browser.text(".navbar")
    browser.screenshot("04-browsable-form")
    browser.driver.find_element(By.CSS_SELECTOR, "#post-generic-content-form button").click()
    WebDriverWait(browser.driver, 60).until(lambda driver: "HTTP 202 Accepted" in driver.page_source)
    assert "in_progress" in browser.text() or "complete" in browser.text()
    browser.screenshot("05-job-accepted")

    # its uid is a link to the job's status: the result, charged once
    browser.click_and_wait("#job-status a")
    assert browser.path().startswith("/api/status/")
    assert "HTTP 200 OK" in browser.text() and '"status": "complete"' in browser.text()
    browser.screenshot("06-job-status")

    browser.open("/portal/")
    assert "smartnoise_sql 1.0" in browser.text("#dataset-PENGUIN .portal-archive")
    assert "ε 10 1 9" in browser.text("#dataset-PENGUIN .portal-budget")
    browser.screenshot("07-portal-after-query")

    # Swagger's Authorize dialog gets a token from this server (password grant of lomas_client)
    browser.open("/api/docs")
    WebDriverWait(browser.driver, 30).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".authorize"))
    browser.screenshot("08-swagger")
    browser.driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    browser.driver.find_element(By.ID, "oauth_username").send_keys("Alice")
    browser.driver.find_element(By.ID, "oauth_password").send_keys("alice-password")
    oauth2 = browser.driver.find_element(
        By.XPATH, "//div[contains(@class, 'auth-container')][.//h4[contains(., 'oauth2')]]"
    )
    oauth2.find_element(By.CSS_SELECTOR, ".modal-btn.auth.authorize").click()
    WebDriverWait(browser.driver, 30).until(
        lambda driver: "Authorized" in driver.find_element(By.CSS_SELECTOR, ".modal-ux").text
    )
    browser.screenshot("09-swagger-authorized")

    browser.open("/portal/")
    browser.click_and_wait("#logout-form button")
    browser.open("/portal/")
    assert browser.path().startswith("/accounts/login/")
