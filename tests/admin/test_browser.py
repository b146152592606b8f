"""End to end in a real browser: Debian's `chromium`, driven by Playwright, against the live
server. A teacher finds an at-risk student of its cohort and sees why; an admin erases a
student through the action and its confirmation page.

Set ADMIN_SCREENSHOT_DIR (e.g. `docs`) to keep the teacher's student page as
`teacher-student-page.png` there; otherwise the screenshot goes to a temporary directory.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from mastery.models import Student
from tests.admin.support import BASICS, LOOPS, School, build_school, learning_event, seed
from tests.browser import browser_page, chromium_path, log_in

# The live server reads the analytics history from the replica alias (the test settings' mirror).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "replica"])]

SCREENSHOT = "teacher-student-page.png"


def month_of_work(student_id: str) -> list[dict]:
    """Four weeks of a student getting better at basics and functions, stuck on loops."""
    events = []
    for day in range(28):
        days_ago = 27 - day
        for topic, start, gain in ((BASICS, 0.3, 0.025), ("python.functions", 0.2, 0.02)):
            if day % 2 == 0:
                score = min(1.0, start + gain * day)
                events.append(
                    learning_event(
                        student_id,
                        topic,
                        "quiz.submitted",
                        {"quiz_id": f"q{day}", "score": round(10 * score, 1), "max_score": 10},
                        days_ago=days_ago,
                    )
                )
                events.append(
                    learning_event(
                        student_id,
                        topic,
                        "exercise.completed",
                        {"exercise_id": f"ex{day // 2}"},
                        days_ago=days_ago,
                    )
                )
        if day % 5 == 0:
            events.append(
                learning_event(
                    student_id,
                    LOOPS,
                    "quiz.submitted",
                    {"quiz_id": f"lq{day}", "score": 2, "max_score": 10},
                    days_ago=days_ago,
                )
            )
    return events


@pytest.fixture
def browser_school(transactional_db, pinned_clock) -> School:
    """Built before the browser starts: the ORM is not used while Playwright runs. The
    clock is pinned (the live server reads it too), as for the other admin tests."""
    school = build_school()
    seed(month_of_work("s-a1"))
    return school


@pytest.fixture
def chromium() -> str:
    return chromium_path()


def expect_listed(page, student_ids: list[str]) -> None:
    expect(page.locator("#result_list tbody th")).to_have_text(student_ids)


def test_teacher_finds_an_at_risk_student_and_sees_why(
    chromium, browser_school, live_server, tmp_path
):
    directory = Path(os.environ.get("ADMIN_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)

    with browser_page(chromium) as page:
        log_in(page, live_server, "teacher-a")

        page.get_by_role("link", name="Students").first.click()
        expect_listed(page, ["s-a1", "s-a2"])
        assert "s-b1" not in page.content()

        filters = page.locator("#changelist-filter")
        filters.get_by_role("link", name="At risk (a topic below 0.5)", exact=True).click()
        expect_listed(page, ["s-a1"])

        page.get_by_role("link", name="s-a1").click()
        chart = page.locator("svg.me-chart")
        chart.wait_for()
        assert chart.is_visible()
        assert chart.locator("polyline.me-overall-line").count() == 1
        assert chart.locator("circle.me-dot").count() >= 20
        topics = page.locator("table.me-topics tbody th").all_inner_texts()
        assert [t.split()[0] for t in topics] == [BASICS, "python.functions", LOOPS]
        assert "at risk" in page.locator("table.me-topics").inner_text()
        # Nothing wider than the window: the page reads without scrolling sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280

        page.screenshot(path=str(directory / SCREENSHOT), full_page=True)

    assert (directory / SCREENSHOT).stat().st_size > 10_000


def test_teacher_typing_another_cohorts_student_url_gets_404(chromium, browser_school, live_server):
    other = browser_school.students["s-b1"].pk

    with browser_page(chromium) as page:
        log_in(page, live_server, "teacher-a")
        response = page.goto(f"{live_server.url}/admin/mastery/student/{other}/change/")

        assert response.status == 404
        assert "s-b1" not in page.content()


def test_admin_erases_a_student_through_the_action(chromium, browser_school, live_server):
    target = browser_school.students["s-b1"]

    with browser_page(chromium) as page:
        log_in(page, live_server, "admin")
        page.goto(f"{live_server.url}/admin/mastery/student/")
        page.check(f"input[name=_selected_action][value='{target.pk}']")
        page.select_option("select[name=action]", "erase")
        page.click("button[name=index]")

        page.get_by_text("This cannot be undone").wait_for()
        assert "s-b1" in page.locator("ul.me-erase-list").inner_text()
        page.get_by_role("button", name="Yes, erase 1 student").click()

        page.locator("ul.messagelist").wait_for()
        assert "Erased 1 student(s): s-b1" in page.locator("ul.messagelist").inner_text()
        expect_listed(page, ["s-a1", "s-a2"])

    assert not Student.objects.filter(student_id="s-b1").exists()
