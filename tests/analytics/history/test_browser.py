"""In a real browser (Debian's chromium through Playwright, as tests/admin/test_browser.py
launches it): a teacher of three classes selects them on the cohort list, runs "Compare
selected cohorts", and reads each pair's result in words beside the box plots.

Set ADMIN_SCREENSHOT_DIR (e.g. `docs`) to keep the pages as `cohort-comparison.png` and
`cohort-distribution.png` (the cohort page's distribution section).
"""

import random

import pytest

from mastery.models import User
from tests.analytics.history.support import put_record
from tests.browser import browser_page, chromium_path, log_in, screenshot_dir
from tests.factories import CohortFactory, StudentFactory, UserFactory

# The live server reads the analytics history from the replica alias (the test settings' mirror).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "replica"])]

SCREENSHOT = "cohort-comparison.png"
SECTION_SCREENSHOT = "cohort-distribution.png"
# name, class size, mean mastery of its students
CLASSES = (("Year 10 A", 24, 0.66), ("Year 10 B", 27, 0.58), ("Year 10 C", 22, 0.64))
TOPICS = ("python.basics", "python.loops", "python.functions")


@pytest.fixture
def classes(transactional_db):
    rng = random.Random(12)
    teacher = UserFactory(username="teacher-10", role=User.Role.TEACHER)
    for index, (name, size, centre) in enumerate(CLASSES):
        students = []
        for n in range(size):
            student = StudentFactory(student_id=f"y10-{index}-{n:02d}")
            for slug in TOPICS:
                mastery = round(min(1.0, max(0.0, rng.gauss(centre, 0.12))), 4)
                put_record(student, slug, mastery, completion=min(1.0, mastery + 0.1),
                           quiz=mastery, quality=max(0.0, mastery - 0.05),
                           consistency=rng.uniform(0.2, 0.8))  # fmt: skip
            students.append(student)
        CohortFactory(cohort_id=f"y10-{'abc'[index]}", name=name, students=students,
                      teachers=[teacher])  # fmt: skip
    return teacher


@pytest.fixture
def chromium() -> str:
    return chromium_path()


def test_a_teacher_compares_its_classes_side_by_side(chromium, classes, live_server, tmp_path):
    directory = screenshot_dir(tmp_path)

    with browser_page(chromium) as page:
        log_in(page, live_server, "teacher-10")
        page.goto(f"{live_server.url}/admin/mastery/cohort/")
        page.check("#action-toggle")
        page.select_option("select[name=action]", "compare_cohorts")
        page.click("button[name=index]")

        page.locator("#compare-pairs").wait_for()
        sentences = page.locator("#compare-pairs li").all_inner_texts()
        assert len(sentences) == 3
        assert all(" is ahead by " in s or s.startswith("No test") for s in sentences)
        boxes = page.locator("#compare-distributions svg rect")
        assert boxes.count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=str(directory / SCREENSHOT), full_page=True)

        page.goto(f"{live_server.url}/admin/mastery/cohort/")
        page.get_by_role("link", name="y10-a").click()
        section = page.locator("#cohort-distribution")
        section.wait_for()
        assert section.locator("svg").count() == 2  # the histogram and the box plot
        assert "over 24 consenting students" in section.inner_text()
        section.screenshot(path=str(directory / SECTION_SCREENSHOT))

    assert (directory / SCREENSHOT).stat().st_size > 10_000
    assert (directory / SECTION_SCREENSHOT).stat().st_size > 5_000
