"""In a real browser (Debian's chromium through Playwright, as tests/admin/test_browser.py):
a teacher opens a flagged student's page, reads the prediction, its reasons and the
forecast band on the history chart, and records a verdict on the flag.

Set ADMIN_SCREENSHOT_DIR (e.g. `docs`) to keep `student-prediction.png` there; otherwise it
goes to a temporary directory.
"""

import pytest

from analytics.models.predictions import FlagFeedback
from tests.analytics.predictions.support import BASICS, exercises, quizzes, seed
from tests.browser import browser_page, chromium_path, log_in, screenshot_dir

# The live server reads the analytics history from the replica alias (the test settings' mirror).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "replica"])]

SCREENSHOT = "student-prediction.png"


@pytest.fixture
def chromium() -> str:
    return chromium_path()


@pytest.fixture
def flagged_student(transactional_db, school) -> int:
    """s-a1, falling in loops, with some steady work in basics too; built before the browser
    starts (the ORM is not used while Playwright runs)."""
    seed(
        quizzes("s-a1", BASICS, dict.fromkeys(range(24, -1, -3), 0.6))
        + exercises("s-a1", BASICS, list(range(24, -1, -4)))
    )
    return school.students["s-a1"].pk


def test_teacher_reads_why_a_student_is_flagged_and_records_a_verdict(
    chromium, flagged_student, live_server, tmp_path
):
    directory = screenshot_dir(tmp_path)

    with browser_page(chromium) as page:
        log_in(page, live_server, "teacher-a")

        page.goto(f"{live_server.url}/admin/mastery/student/{flagged_student}/change/")
        chart = page.locator("svg.me-chart")
        chart.wait_for()
        assert chart.locator("polygon.me-forecast-band").count() == 1
        assert chart.locator("polyline.me-forecast-line").count() == 1
        section = page.locator("#predictions")
        text = section.inner_text()
        assert "needs intervention" in text
        assert "Quiz fell from 0.90 to" in text
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        # From the mastery table to the end of the prediction: the flag, its reasons
        # and the band.
        top = page.locator("#mastery").bounding_box()
        bottom = page.locator("#predictions").bounding_box()
        page.screenshot(
            path=str(directory / SCREENSHOT),
            full_page=True,
            clip={
                "x": top["x"] - 12,
                "y": top["y"] - 12,
                "width": top["width"] + 24,
                "height": bottom["y"] + bottom["height"] - top["y"] + 24,
            },
        )

        section.locator("select[name=flag-topic]").select_option("python.loops")
        section.locator("select[name=flag-verdict]").select_option("acted")
        section.locator("input[name=flag-comment]").fill("talked to the student")
        section.get_by_role("button", name="Record verdict").click()
        page.locator("ul.messagelist").wait_for()
        message = page.locator("ul.messagelist").inner_text()
        assert "Recorded: the python.loops flag was acted on it." in message
        assert "talked to the student" in page.locator("#flag-verdicts").inner_text()

    assert (directory / SCREENSHOT).stat().st_size > 10_000
    assert FlagFeedback.objects.get().comment == "talked to the student"
