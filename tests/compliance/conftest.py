"""A small school for the privacy tests, and a per-test erasure ledger file."""

import pytest
from django.test import override_settings

from mastery.models import Student, User
from tests.compliance.support import BYSTANDER, TARGET, School, history_events, ingest
from tests.factories import CohortFactory, UserFactory


@pytest.fixture(autouse=True)
def ledger_file(tmp_path):
    """Each test gets its own ledger file, so the shared default is never written."""
    path = tmp_path / "erasure-ledger.jsonl"
    with override_settings(ERASURE_LEDGER_FILE=path):
        yield path


@pytest.fixture
def school(db) -> School:
    """TARGET and BYSTANDER, with events over three topics and four days, in one cohort
    taught by `teacher`; each has a student login."""
    ingest(history_events(TARGET) + history_events(BYSTANDER))
    admin = UserFactory(username="dpo-admin", role=User.Role.ADMIN)
    teacher = UserFactory(username="ms-teacher", role=User.Role.TEACHER)
    service = UserFactory(username="lms-service", role=User.Role.SERVICE)
    cohort = CohortFactory(
        cohort_id="cohort-7b",
        students=list(Student.objects.filter(student_id__in=[TARGET, BYSTANDER])),
        teachers=[teacher],
    )
    school = School(cohort=cohort, admin=admin, teacher=teacher, service=service)
    school.logins = {
        TARGET: UserFactory(
            username="login-of-target", role=User.Role.STUDENT, student=school.student(TARGET)
        ),
        BYSTANDER: UserFactory(
            username="login-of-bystander",
            role=User.Role.STUDENT,
            student=school.student(BYSTANDER),
        ),
    }
    return school
