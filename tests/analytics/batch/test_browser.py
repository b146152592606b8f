"""In a real browser (Debian's chromium through Playwright, as tests/admin/test_browser.py
launches it): an admin reads the batch jobs (status, progress, submitter) and one job's
page with the students it could not process.

Set ADMIN_SCREENSHOT_DIR (e.g. `docs`) to keep the pages as `batch-jobs.png` and
`batch-job.png`.
"""

import pytest
from django.utils import timezone

from analytics.models.batch import BatchJob
from analytics.services.batch import batch_job_submit
from mastery.models import User
from tests.analytics.batch.support import learning_events, run_job
from tests.browser import browser_page, chromium_path, log_in, screenshot_dir
from tests.factories import CohortFactory, StudentFactory, UserFactory, ingest_all

pytestmark = pytest.mark.browser


@pytest.fixture
def jobs(transactional_db) -> BatchJob:
    students = [StudentFactory(student_id=f"y10-{n:02d}") for n in range(12)]
    ingest_all([e for s in students for e in learning_events(s.student_id, "t.loops", score=7)])
    teacher = UserFactory(username="ms-okafor", role=User.Role.TEACHER)
    UserFactory(username="dpo-admin", role=User.Role.ADMIN)
    CohortFactory(cohort_id="y10", students=students[:10], teachers=[teacher])
    asked = [s.student_id for s in students] + ["y11-07"]
    shown = run_job(batch_job_submit(submitter=teacher, student_ids=asked, priority="high"))
    batch_job_submit(submitter=teacher, student_ids=asked[:4], priority="low")
    lost = batch_job_submit(submitter=teacher, student_ids=asked[:6], priority="normal")
    BatchJob.objects.filter(pk=lost.pk).update(
        status="failed",
        attempts=3,
        error_code="worker_lost",
        error_message="The worker running this job stopped, 3 times in a row.",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    return shown


@pytest.fixture
def chromium() -> str:
    return chromium_path()


def test_an_admin_reads_the_batch_jobs_and_what_one_could_not_do(
    chromium, jobs, live_server, tmp_path
):
    directory = screenshot_dir(tmp_path)
    with browser_page(chromium, height=800) as page:
        log_in(page, live_server, "dpo-admin")
        page.goto(f"{live_server.url}/admin/analytics/batchjob/")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 3
        listing = page.inner_text("#result_list")
        assert "10 done, 3 failed, of 13" in listing
        assert "worker_lost" in listing
        page.screenshot(path=str(directory / "batch-jobs.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/analytics/batchjob/{jobs.pk}/change/")
        detail = page.inner_text("#content")
        assert "y10-10 (not_found)" in detail
        assert "y11-07 (not_found)" in detail
        assert page.locator("input[name=_save]").count() == 0
        page.screenshot(path=str(directory / "batch-job.png"), full_page=True)
