"""The admin dashboard in a real browser: Debian's headless Chromium driven by Selenium against a live server.

Screenshots of every page the tests look at are saved under ``test-artifacts/admin/``.
"""

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.chromium import headless_chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "admin"
COLLECTIONS = ROOT / "tests" / "fixtures" / "collections"


class AdminBrowser:
    """A signed-in admin's Chromium, with helpers that fill Django admin forms."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")

    def fill(self, name: str, value: str) -> None:
        field = self.driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def submit(self, css: str) -> None:
        """Click a button that loads a new page, and wait until it has."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.click(css)
        WebDriverWait(self.driver, 30).until(expected_conditions.staleness_of(page))

    def follow(self, link_text: str) -> None:
        """Follow a link, and wait until its page has loaded."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.LINK_TEXT, link_text).click()
        WebDriverWait(self.driver, 30).until(expected_conditions.staleness_of(page))

    def text(self, css: str = "body") -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/")
        self.fill("username", username)
        self.fill("password", password)
        self.submit("input[type=submit]")


@pytest.fixture
def browser(live_server: Any, admin_user: Any, transactional_db: None, tmp_path: Path) -> Iterator[AdminBrowser]:
    """Headless Chromium signed in as the lomas admin."""
    driver = headless_chromium(tmp_path / "chromium")
    admin = AdminBrowser(driver, live_server.url)
    try:
        admin.log_in("admin", "admin-password")
        assert "Site administration" in admin.text() or "Django administration" in admin.text()
        yield admin
    finally:
        driver.quit()


def test_admin_onboards_a_researcher_with_a_penguin_budget_and_tops_it_up(browser: AdminBrowser, penguin: Any) -> None:
    from accounts.models import AuditEntry, User
    from budgets.models import Budget

    browser.open("/admin/accounts/user/add/")
    browser.fill("username", "Carol")
    browser.fill("email", "carol@example.com")
    browser.fill("password1", "carol-Password-42")
    browser.fill("password2", "carol-Password-42")
    browser.screenshot("user-add")
    browser.submit("input[name=_save]")
    carol = User.objects.get(username="Carol")
    assert carol.email == "carol@example.com" and carol.check_password("carol-Password-42")

    browser.open(f"/admin/accounts/user/{carol.pk}/change/")
    Select(browser.driver.find_element(By.NAME, "budgets-0-dataset")).select_by_visible_text("PENGUIN")
    browser.fill("budgets-0-initial_epsilon", "1.0")
    browser.fill("budgets-0-initial_delta", "0.00001")
    browser.screenshot("user-budget-inline")
    browser.submit("input[name=_save]")
    budget = Budget.objects.get(user=carol, dataset=penguin)
    assert (budget.initial_epsilon, budget.initial_delta) == (Decimal("1"), Decimal("0.00001"))

    browser.open(f"/admin/budgets/budget/{budget.pk}/change/")
    browser.follow("Top up")
    assert "Top up the budget of Carol on PENGUIN" in browser.text("h1")
    page = browser.text()
    assert "Initial ε" in page and "Remaining ε" in page
    browser.fill("epsilon", "0.5")
    browser.fill("delta", "0")
    browser.screenshot("budget-top-up")
    browser.submit("input[type=submit][value='Top up']")
    assert "Topped up Carol on PENGUIN" in browser.text()
    browser.screenshot("budget-topped-up")
    budget.refresh_from_db()
    assert budget.initial_epsilon == Decimal("1.5") and budget.spent_epsilon == 0
    assert AuditEntry.objects.filter(actor__username="admin", action__startswith="budget.").count() >= 2

    browser.open("/admin/accounts/auditentry/")
    assert "budget." in browser.text("#result_list")
    browser.screenshot("audit-entries")


def test_admin_releases_a_stuck_query_lock(browser: AdminBrowser, alice: Any) -> None:
    from accounts.selectors import user_may_query
    from accounts.services import user_set_may_query

    user_set_may_query(user=alice, may_query=False)
    browser.open("/admin/accounts/user/")
    browser.click(f"input[name=_selected_action][value='{alice.pk}']")
    Select(browser.driver.find_element(By.NAME, "action")).select_by_value("release_query_lock")
    browser.screenshot("release-lock-selected")
    browser.submit("button[name=index]")
    assert "Released the query lock of 1 user(s)." in browser.text()
    browser.screenshot("release-lock-done")
    alice.refresh_from_db()
    assert user_may_query(user=alice)


def test_admin_imports_the_v05_user_collection_after_a_preview(browser: AdminBrowser, demo_datasets: None) -> None:
    from accounts.models import User
    from budgets.models import Budget

    browser.open("/admin/collections/import/")
    assert "Import a collection" in browser.text("h1")
    browser.click("input[name=collection][value=users]")
    browser.driver.find_element(By.NAME, "file").send_keys(str(COLLECTIONS / "v0.5_user_collection.yaml"))
    browser.click("input[name=mode][value=add]")
    browser.submit("input[type=submit][value=Preview]")

    assert "Preview (dry run): nothing has been changed yet" in browser.text()
    preview = browser.text("#import-preview")
    assert "Dr.Antartica" in preview and "add" in preview
    browser.screenshot("import-preview")
    assert not User.objects.filter(username="Dr.Antartica").exists()

    browser.submit("input[name=confirm]")
    assert "Imported the users collection" in browser.text()
    browser.screenshot("import-done")
    antartica = User.objects.get(username="Dr.Antartica")
    assert antartica.email == "dr.antartica@example.com"
    assert Budget.objects.get(user=antartica, dataset__name="PENGUIN").initial_epsilon == Decimal("10")


def test_admin_overview_shows_health_jobs_and_spending(browser: AdminBrowser, alice: Any, penguin: Any) -> None:
    import uuid

    from budgets.services import budget_charge

    for _ in range(3):
        budget_charge(user=alice, dataset=penguin, epsilon=0.1, delta=0, job_uid=uuid.uuid4())
    browser.open("/admin/")
    browser.follow("Service overview")
    assert "Service overview" in browser.text("h1")
    health = browser.text("#service-health")
    assert "Database" in health and "Broker" in health and "Workers" in health
    assert browser.driver.find_element(By.ID, "jobs-in-progress").text.strip().isdigit()
    chart = browser.driver.find_element(By.ID, "epsilon-per-day-chart")
    assert chart.tag_name == "svg" and "PENGUIN" in browser.text()
    top = browser.text("#top-consumers")
    assert "PENGUIN" in top and "Alice" in top
    browser.screenshot("overview")
