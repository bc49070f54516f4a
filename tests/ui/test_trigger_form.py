"""The on-call path, the way a person takes it: log in, dry-run bronze_retention from its trigger form,
read the counts in the task log. Headless Debian Chromium driven by Playwright (no downloaded browser)."""
from __future__ import annotations

import re
import time
from urllib.parse import quote

import psycopg
import pytest
from playwright.sync_api import expect, sync_playwright

from scripts.ui import ADMIN

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.postgres]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DRY_RUN_LINE = re.compile(r"DRY RUN: would delete (\d+) rows \((\d+) unpromoted rows older than cutoff kept\)")
RETENTION_DAYS = 5  # not the default (7): the form's value must reach the task


@pytest.fixture(scope="module")
def page(airflow_ui):
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-install` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def log_in(page, airflow_ui) -> None:
    page.goto(f"{airflow_ui.url}/")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(airflow_ui.password())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{airflow_ui.url}/")


def counts_in_warehouse(dsn: str, cutoff_epoch: int) -> tuple[int, int, int]:
    """(all bronze rows, promoted older than cutoff, unpromoted older than cutoff), straight from SQL."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """select count(*),
                      count(*) filter (where b.transaction_time < %(cutoff)s and s.transaction_id is not null),
                      count(*) filter (where b.transaction_time < %(cutoff)s and s.transaction_id is null)
                 from bronze.transactions b
                 left join silver.transactions_enriched s using (transaction_id)""",
            {"cutoff": cutoff_epoch}).fetchone()


def test_dry_run_from_the_trigger_form(page, airflow_ui, ui_warehouse, artifacts):
    airflow_ui.unpause(("bronze_retention",))
    rows_before = counts_in_warehouse(ui_warehouse, 0)[0]
    log_in(page, airflow_ui)

    page.goto(f"{airflow_ui.url}/dags/bronze_retention")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Run Parameters")).to_be_visible()
    dry_run = form.get_by_label("Dry run")
    expect(dry_run).to_be_checked()  # the safe default
    expect(form.get_by_text("count the rows that would be deleted and kept")).to_be_visible()
    dry_run.check()
    retention = form.get_by_label("Retention (days)")
    retention.fill(str(RETENTION_DAYS))
    expect(form.get_by_text("Delete promoted bronze rows strictly older")).to_be_visible()
    form.screenshot(path=str(artifacts / "bronze_retention_trigger_form.png"))

    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(
            "/api/v2/dags/bronze_retention/dagRuns"), timeout=60_000) as response:
        form.get_by_test_id("trigger-dag-submit").click()
    run = response.value.json()
    assert response.value.status == 200, run
    assert run["conf"]["dry_run"] is True and run["conf"]["retention_days"] == RETENTION_DAYS

    # The task's page shows its log; reload until the run has finished and the line is there.
    page.goto(f"{airflow_ui.url}/dags/bronze_retention/runs/{quote(run['dag_run_id'], safe='')}"
              f"/tasks/bronze_retention")
    line = page.get_by_text(DRY_RUN_LINE).first
    deadline = time.monotonic() + 240
    while True:
        try:
            expect(line).to_be_visible(timeout=15_000)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the dry-run line never showed in the task log"
            page.reload()
    expect(page.get_by_text("Success").first).to_be_visible()
    page.screenshot(path=str(artifacts / "bronze_retention_task_log.png"), full_page=True)
    would_delete, kept = map(int, DRY_RUN_LINE.search(line.inner_text()).groups())

    with airflow_ui.client() as api:
        state = api.get(f"/dags/bronze_retention/dagRuns/{run['dag_run_id']}").json()["state"]
        xcom = api.get(f"/dags/bronze_retention/dagRuns/{run['dag_run_id']}/taskInstances/bronze_retention"
                       f"/xcomEntries/return_value", params={"deserialize": True}).json()["value"]
    assert state == "success"
    details = xcom["details"]
    assert details["dry_run"] is True and details["retention_days"] == RETENTION_DAYS
    rows_now, promoted_old, unpromoted_old = counts_in_warehouse(ui_warehouse, details["cutoff"])
    assert (would_delete, kept) == (promoted_old, unpromoted_old) == (details["deleted_rows"],
                                                                      details["unpromoted_kept"])
    assert would_delete > 0
    assert rows_now == rows_before, "a dry run must not delete anything"
