import pytest

from mastery.models import Student
from tests.factories import StudentFactory


@pytest.fixture
def student(db) -> Student:
    return StudentFactory(student_id="s-history")
