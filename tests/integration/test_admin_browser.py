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

    def fits_the_window(self, css: str) -> bool:
        """Whether the element is no wider than the window (nothing hidden behind a sideways scroll)."""
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return e.getBoundingClientRect().right <= window.innerWidth"
            " && document.documentElement.scrollWidth <= window.innerWidth;",
            css,
        )

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
        assert "lomas-django" in admin.text("#site-name")
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
    chart = browser.driver.find_element(By.CSS_SELECTOR, "svg.cumulative-chart")
    assert chart.tag_name == "svg" and "PENGUIN" in browser.text()
    top = browser.text("#top-consumers")
    assert "PENGUIN" in top and "Alice" in top
    browser.screenshot("overview")


@pytest.fixture
def console_data(alice: Any, bob: Any, penguin: Any, iris: Any, admin_user: Any) -> dict[str, Any]:
    """Spend on two datasets (Alice above 80 % of hers), a collected, a failed and a running job, an archive."""
    import uuid

    from django.utils import timezone

    from accounts.services import audit_record
    from budgets.services import budget_charge
    from queries.models import Job, QueryArchive

    audit_record(actor=admin_user, action="demo.older", target="PENGUIN")
    audit_record(actor=admin_user, action="demo.newer", target="PENGUIN")
    charged = uuid.uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=0.5, delta=1.2345678e-5, job_uid=charged)
    budget_charge(user=alice, dataset=penguin, epsilon=8, delta=0, job_uid=uuid.uuid4())
    budget_charge(user=bob, dataset=iris, epsilon=1 / 3, delta=1e-6, job_uid=uuid.uuid4())
    now = timezone.now()
    Job.objects.create(
        uid=charged, user=alice, dataset=penguin, library="opendp", kind="query", request={},
        status=Job.Status.COMPLETE, result={"value": 1}, finished_at=now, collected_at=now,
    )  # fmt: skip
    Job.objects.create(
        user=bob, dataset=iris, library="smartnoise_sql", kind="query", request={},
        status=Job.Status.FAILED, status_code=422, finished_at=now,
    )  # fmt: skip
    Job.objects.create(user=bob, dataset=iris, library="diffprivlib", kind="dummy", request={})
    QueryArchive.objects.create(
        user=alice, dataset=penguin, user_name="Alice", dataset_name="PENGUIN", dp_library="opendp",
        job_uid=charged, client_input={"dataset_name": "PENGUIN"}, response={"epsilon": 0.5},
    )  # fmt: skip
    return {"job_uid": charged}


def test_admin_walks_the_console(browser: AdminBrowser, console_data: dict[str, Any], alice: Any, penguin: Any) -> None:
    """The admin's path: index, overview, budgets, ledger, archive, jobs, user, audit, each page checked."""
    from budgets.models import Budget, LedgerEntry

    browser.open("/admin/")
    index = browser.text("#content-main")
    assert "Service overview" in index and "Access tokens" not in index and "Applications" not in index
    assert browser.driver.title == "Console | lomas-django"
    browser.screenshot("console-01-index")

    browser.follow("Service overview")
    spend = browser.text("#datasets-spend")
    assert "PENGUIN" in spend and "8.5" in spend and "1.5" in spend and "no cap" in spend
    assert "0.333333" in spend and "1e-6" in spend  # IRIS: ε to 6 digits, δ in scientific notation
    near = browser.text("#near-exhaustion")
    assert "Alice" in near and "85.0 %" in near and "Bob" not in near
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "svg.cumulative-chart")) == 2
    attention = browser.text("#jobs-attention")
    assert "Failed" in attention and "In progress" in attention and "Complete" not in attention
    assert browser.fits_the_window("#content-main")
    browser.screenshot("console-02-overview")
    browser.follow("Failed in the last 24 h")
    assert "1 job" in browser.text("#changelist") and "smartnoise_sql" in browser.text("#result_list")
    browser.screenshot("console-03-jobs-failed-filter")

    browser.open("/admin/budgets/budget/")
    headers = browser.text("#result_list thead")
    assert "Initial ε" in headers and "Remaining δ" in headers and "\u0395" not in headers and "\u0394" not in headers
    assert browser.fits_the_window("#result_list")
    assert "0.0000123456780000000000000000" not in browser.text()
    browser.screenshot("console-04-budgets")

    budget = Budget.objects.get(user=alice, dataset=penguin)
    browser.open(f"/admin/budgets/budget/{budget.pk}/change/")
    page = browser.text()
    assert "0.5000000000000000000000000000" not in page and "1.235e-5" in page and "Remaining δ" in page
    ledger_headers = browser.text(".inline-group thead")
    assert "Amount ε" in ledger_headers and "Amount δ" in ledger_headers and "\u0395" not in ledger_headers
    short = browser.driver.find_element(By.XPATH, "//span[@class='lomas-amount' and text()='1.235e-5']")
    assert short.get_attribute("title") == "0.000012345678"  # the exact decimal on hover
    assert browser.fits_the_window("#content-main")
    browser.screenshot("console-05-budget-with-ledger")

    entry = LedgerEntry.objects.get(job_uid=console_data["job_uid"])
    browser.open(f"/admin/budgets/ledgerentry/{entry.pk}/change/")
    assert "ε 0.5, δ 1.235e-5" in browser.driver.title and "0.000012345678" in browser.text()
    browser.screenshot("console-06-ledger-entry")

    browser.open("/admin/queries/queryarchive/")
    row = browser.text("#result_list tbody")
    assert "Alice" in row and "PENGUIN" in row and "0.5" in row and "1.235e-5" in row
    browser.follow("budget")
    assert "Alice on PENGUIN" in browser.text("#content")
    browser.screenshot("console-07-archive-to-budget")

    browser.open("/admin/queries/job/?collected=yes")
    assert str(console_data["job_uid"]) in browser.text("#result_list")
    browser.screenshot("console-08-jobs-collected")

    browser.open(f"/admin/accounts/user/{alice.pk}/change/")
    browser.follow("archive")
    assert "1 query archive" in browser.text("#changelist")
    browser.open("/admin/accounts/auditentry/")
    audit = browser.text("#result_list tbody")
    assert audit.index("demo.newer") < audit.index("demo.older")
    browser.screenshot("console-09-audit-newest-first")

    browser.open(f"/admin/budgets/budget/{budget.pk}/delete/")
    assert "revoked, its budget and ledger kept" in browser.text()
    browser.submit("input[type=submit]")  # deleting a budget revokes the access and keeps its ledger
    browser.open(f"/admin/budgets/budget/{budget.pk}/delete/")
    assert "Not deleted: the access of Alice to PENGUIN is already revoked" in browser.text(".messagelist")
    browser.screenshot("console-10-deletion-refused")


def test_admin_replaces_a_dataset_file_as_a_checked_new_version(
    browser: AdminBrowser, alice: Any, penguin: Any, tmp_path: Path, settings: Any
) -> None:
    import uuid

    from budgets.services import budget_charge

    settings.LOMAS_DATA_DIR = str(tmp_path / "data")
    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=uuid.uuid4())
    source = (ROOT / "datasets" / "demo" / "datasets" / "penguin.csv").read_text()
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(source.replace("Adelie", "Emperor", 1))
    right = tmp_path / "penguin-2025.csv"
    right.write_text(source)

    browser.open("/admin/datasets/dataset/upload/")
    assert browser.driver.find_element(By.NAME, "metadata").get_attribute("value") == ""
    browser.fill("dataset_name", "bad name!")
    browser.driver.find_element(By.NAME, "file").send_keys(str(right))
    browser.submit("input[type=submit][value=Upload]")
    assert "Invalid dataset name 'bad name!'" in browser.text()
    browser.screenshot("console-11-upload-bad-name")

    browser.open(f"/admin/datasets/dataset/{penguin.pk}/change/")
    assert "bill_length_mm" in browser.text("#dataset-columns")
    browser.screenshot("console-12-dataset-columns")
    browser.follow("Upload a new version")
    assert "This replaces the data researchers query on PENGUIN." in browser.text("#new-version-warning")
    button = browser.driver.find_element(By.CSS_SELECTOR, "input.lomas-danger")
    assert button.value_of_css_property("background-color") in ("rgba(186, 33, 33, 1)", "rgb(186, 33, 33)")
    browser.driver.find_element(By.NAME, "file").send_keys(str(wrong))
    browser.click("input[name=confirm]")
    browser.submit("input.lomas-danger")
    assert "column species: 1 row(s) not among its 3 categories" in browser.text("#new-version-error")
    browser.screenshot("console-13-new-version-refused")
    browser.driver.find_element(By.NAME, "file").send_keys(str(right))
    assert browser.driver.find_element(By.NAME, "confirm").is_selected()  # still ticked after the refusal
    browser.submit("input.lomas-danger")
    assert "PENGUIN now reads uploads/PENGUIN.v2.csv (version 2); budgets and spend are kept." in browser.text()
    browser.screenshot("console-14-new-version-done")
    assert alice.budgets.get().spent_epsilon == Decimal(1)

    browser.follow("Edit the columns")
    browser.fill("form-2-maximum", "70")
    browser.screenshot("console-15-column-editor")
    browser.submit("input[type=submit][value='Save the columns']")
    assert "Saved the columns of PENGUIN." in browser.text()
    penguin.refresh_from_db()
    assert penguin.metadata["tableSchema"]["columns"][2]["maximum"] == 70


def test_admin_sees_what_a_clean_import_deletes_and_keeps(
    browser: AdminBrowser, penguin: Any, iris: Any, tmp_path: Path
) -> None:
    import yaml

    from lomas.console.collections import collection_export

    browser.open("/admin/collections/import/")
    browser.click("input[name=collection][value=datasets]")
    export = browser.driver.find_element(By.LINK_TEXT, "Export datasets (YAML, metadata inline)")
    assert export.get_attribute("href").endswith("/admin/collections/export/datasets/")
    yaml_file = tmp_path / "penguin.yaml"
    document, _ = collection_export(name="datasets")
    document["datasets"] = [entry for entry in document["datasets"] if entry["dataset_name"] == "PENGUIN"]
    document["datasets"][0]["metadata"]["maxContributions"] = 2
    yaml_file.write_text(yaml.safe_dump(document))
    browser.driver.find_element(By.NAME, "file").send_keys(str(yaml_file))
    browser.click("input[name=mode][value=clean]")
    browser.submit("input[type=submit][value=Preview]")
    warning = browser.text("#import-destructive")
    assert "This import deletes 1 dataset(s)" in warning and "the budget ledger is never erased" in warning
    assert "metadata.maxContributions: 1 → 2" in browser.text("#import-preview")
    assert browser.driver.find_element(By.CSS_SELECTOR, "input[name=confirm]").get_attribute("value") == (
        "Delete 1 and import"
    )
    browser.screenshot("console-16-clean-import-preview")
