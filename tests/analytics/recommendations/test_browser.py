"""In a real browser (Debian's chromium through Playwright, as tests/admin/test_browser.py):
a teacher opens a student's page and reads its recommendations and learning path, then a
topic's prerequisite graph.

Set ADMIN_SCREENSHOT_DIR (e.g. `docs`) to keep `student-recommendations.png` and
`topic-prerequisites.png` there; otherwise they go to a temporary directory.
"""

import pytest

from tests.analytics.recommendations.conftest import FUNCTIONS, LOOPS, STRINGS
from tests.browser import browser_page, chromium_path, log_in, screenshot_dir

# The live server reads the analytics history from the replica alias (the test settings' mirror).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "replica"])]


@pytest.fixture
def chromium() -> str:
    return chromium_path()


@pytest.fixture
def browser_school(transactional_db, school):
    """Built before the browser starts: the ORM is not used while Playwright runs."""
    return {
        "student": school.students["s-a1"].pk,
        "topic": school.topics[LOOPS].pk,
    }


def test_teacher_reads_the_recommendations_path_and_prerequisite_graph(
    chromium, browser_school, live_server, tmp_path
):
    directory = screenshot_dir(tmp_path)

    with browser_page(chromium) as page:
        log_in(page, live_server, "teacher-a")

        page.goto(f"{live_server.url}/admin/mastery/student/{browser_school['student']}/change/")
        table = page.locator("table.me-recommendations")
        table.wait_for()
        assert table.locator("tbody tr").count() == 4
        assert "3 more exercises in python.loops" in table.inner_text()
        steps = page.locator("ol.me-path > li > strong").all_inner_texts()
        assert steps == [STRINGS, LOOPS, FUNCTIONS]
        assert "blocked by python.loops" in page.locator("li.me-path-locked").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.locator("#recommendations").scroll_into_view_if_needed()
        page.screenshot(path=str(directory / "student-recommendations.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/mastery/topic/{browser_school['topic']}/change/")
        graph = page.locator("svg.me-graph")
        graph.wait_for()
        assert graph.locator("line.me-edge").count() == 2
        assert graph.locator("g.me-node-current text").text_content() == LOOPS
        page.locator("#prerequisite-graph").screenshot(
            path=str(directory / "topic-prerequisites.png")
        )

    assert (directory / "student-recommendations.png").stat().st_size > 10_000
    assert (directory / "topic-prerequisites.png").stat().st_size > 2_000
