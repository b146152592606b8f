"""Account writes: linking a student login and cohort membership, by service and by command."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings

from ingest.pipeline import ingest_batch
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, User
from mastery.policy import current_policy
from mastery.services import account_create_or_update, mastery_records_rescore
from tests.factories import CohortFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


def members(cohort_id: str) -> tuple[set[str], set[str]]:
    """(student ids, teacher usernames) of a cohort."""
    cohort = Cohort.objects.get(cohort_id=cohort_id)
    return (
        set(cohort.students.values_list("student_id", flat=True)),
        set(cohort.teachers.values_list("username", flat=True)),
    )


# --- account_create_or_update ---------------------------------------------------------------


def test_a_student_login_is_linked_to_a_new_student():
    user, created = account_create_or_update(username="ann", role="student", student_id="s-ann")

    assert created
    assert user.student == Student.objects.get(student_id="s-ann")
    assert User.objects.get(username="ann").student.student_id == "s-ann"


def test_a_student_login_is_linked_to_an_existing_student_without_a_copy():
    existing = StudentFactory(student_id="s-ann")

    user, _ = account_create_or_update(username="ann", role="student", student_id="s-ann")

    assert user.student_id == existing.pk
    assert Student.objects.filter(student_id="s-ann").count() == 1


def test_a_linked_student_joins_cohorts_which_are_created_if_new():
    CohortFactory(cohort_id="c-old", name="Old cohort")

    account_create_or_update(
        username="ann", role="student", student_id="s-ann", cohort_ids=["c-old", "c-new"]
    )

    assert members("c-old") == ({"s-ann"}, set())
    assert members("c-new") == ({"s-ann"}, set())
    assert Cohort.objects.get(cohort_id="c-old").name == "Old cohort"
    assert Cohort.objects.get(cohort_id="c-new").name == "c-new"


def test_an_already_linked_student_joins_a_cohort_without_repeating_the_link():
    account_create_or_update(username="ann", role="student", student_id="s-ann")

    user, created = account_create_or_update(username="ann", role="student", cohort_ids=["c-1"])

    assert not created
    assert user.student.student_id == "s-ann"
    assert members("c-1") == ({"s-ann"}, set())


def test_joining_the_same_cohort_twice_is_one_membership():
    for _ in range(2):
        account_create_or_update(
            username="ann", role="student", student_id="s-ann", cohort_ids=["c-1", "c-1"]
        )

    cohort = Cohort.objects.get(cohort_id="c-1")
    assert cohort.students.count() == 1
    assert Cohort.objects.count() == 1


def test_a_teacher_teaches_the_given_cohorts():
    CohortFactory(cohort_id="c-1", students=[StudentFactory(student_id="s-1")])

    user, _ = account_create_or_update(username="tom", role="teacher", cohort_ids=["c-1", "c-2"])

    assert members("c-1") == ({"s-1"}, {"tom"})
    assert members("c-2") == (set(), {"tom"})
    assert user.student is None
    assert (user.is_staff, user.is_superuser) == (True, False)


@pytest.mark.parametrize("role", ["admin", "service"])
def test_a_cohort_is_refused_for_admin_and_service_and_nothing_is_kept(role):
    with pytest.raises(ValueError, match="cohort"):
        account_create_or_update(username="root", role=role, cohort_ids=["c-1"])

    assert not User.objects.filter(username="root").exists()
    assert not Cohort.objects.exists()


def test_a_cohort_is_refused_for_a_student_login_without_a_student():
    with pytest.raises(ValueError, match="cohort"):
        account_create_or_update(username="ann", role="student", cohort_ids=["c-1"])

    assert not User.objects.filter(username="ann").exists()
    assert not Cohort.objects.exists()


@pytest.mark.parametrize("role", ["teacher", "admin", "service"])
def test_a_student_id_is_refused_for_a_non_student_role_and_nothing_is_kept(role):
    with pytest.raises(ValueError, match="only a student login"):
        account_create_or_update(username="tom", role=role, student_id="s-tom")

    assert not User.objects.filter(username="tom").exists()
    assert not Student.objects.exists()


def test_a_login_that_stops_being_a_student_is_unlinked():
    account_create_or_update(username="ann", role="student", student_id="s-ann")

    user, _ = account_create_or_update(username="ann", role="teacher")

    assert user.student is None
    assert User.objects.get(username="ann").student is None
    assert Student.objects.filter(student_id="s-ann").exists()


def test_a_malformed_student_id_is_refused_and_not_created():
    with pytest.raises(ValidationError):
        account_create_or_update(username="ann", role="student", student_id="s ann!")

    assert not Student.objects.exists()
    assert not User.objects.filter(username="ann").exists()


def test_a_malformed_cohort_id_is_refused_and_not_created():
    with pytest.raises(ValidationError):
        account_create_or_update(username="tom", role="teacher", cohort_ids=["bad cohort!"])

    assert not Cohort.objects.exists()
    assert not User.objects.filter(username="tom").exists()


def test_a_student_already_linked_to_another_login_is_refused():
    account_create_or_update(username="ann", role="student", student_id="s-ann")

    with pytest.raises(ValidationError):
        account_create_or_update(username="eve", role="student", student_id="s-ann")

    assert User.objects.get(username="ann").student.student_id == "s-ann"
    assert not User.objects.filter(username="eve").exists()


def test_updating_keeps_the_password_unless_one_is_given():
    UserFactory(username="ann", role="student", password="old-long-passphrase")

    user, created = account_create_or_update(username="ann", role="student", student_id="s-1")

    assert not created
    assert user.check_password("old-long-passphrase")


# --- the create_account command -------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("create_account", *args, stdout=out)
    return out.getvalue()


def test_command_links_a_student_and_joins_cohorts():
    out = run(
        "ann", "--role", "student", "--student-id", "s-ann", "--cohort", "c-1", "--cohort", "c-2"
    )

    assert out.strip() == "created ann (role student, student s-ann)"
    assert User.objects.get(username="ann").student.student_id == "s-ann"
    assert members("c-1") == ({"s-ann"}, set())
    assert members("c-2") == ({"s-ann"}, set())


def test_command_makes_a_teacher_teach_cohorts():
    out = run("tom", "--role", "teacher", "--cohort", "c-1")

    assert out.strip() == "created tom (role teacher)"
    assert members("c-1") == (set(), {"tom"})

    out = run("tom", "--role", "teacher", "--cohort", "c-2")

    assert out.strip() == "updated tom (role teacher)"
    assert members("c-1") == (set(), {"tom"})
    assert members("c-2") == (set(), {"tom"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "admin", "--cohort", "c-1"), "cohort"),
        (("--role", "service", "--cohort", "c-1"), "cohort"),
        (("--role", "student", "--cohort", "c-1"), "cohort"),
        (("--role", "teacher", "--student-id", "s-1"), "only a student login"),
        (("--role", "student", "--student-id", "s 1!"), "letters, digits"),
        (("--role", "teacher", "--cohort", "bad cohort!"), "letters, digits"),
    ],
)
def test_command_refuses_what_the_role_cannot_have(args, message):
    with pytest.raises(CommandError, match=message):
        run("someone", *args)

    assert not User.objects.filter(username="someone").exists()
    assert not Student.objects.exists()
    assert not Cohort.objects.exists()


def test_rescore_command_brings_only_stale_records_to_a_new_policy_in_chunks():
    now = datetime.now(UTC)
    ingest_batch(
        [
            {
                "event_id": f"rs-{n}",
                "event_type": "quiz.submitted",
                "student_id": f"s-rs{n}",
                "topic": "t.rescore",
                "occurred_at": (now - timedelta(hours=1)).isoformat(),
                "payload": {"quiz_id": "q", "score": 6, "max_score": 10},
            }
            for n in range(7)
        ],
        source="http",
    )
    old_hash = current_policy().policy_hash
    assert set(MasteryRecord.objects.values_list("mastery", flat=True)) == {0.1871}
    weights = {"completion": 0.1, "quiz": 0.7, "quality": 0.1, "consistency": 0.1}
    with override_settings(MASTERY_WEIGHTS=weights):
        out = io.StringIO()
        call_command("rescore_mastery", stdout=out)
        assert out.getvalue().startswith("7 records rescored")
        assert "7 snapshots rescored" in out.getvalue()
        assert mastery_records_rescore(only_stale=True, chunk=3) == 0
        assert mastery_records_rescore(chunk=3) == 7
        new_hash = current_policy().policy_hash
    records = MasteryRecord.objects.all()
    assert new_hash != old_hash
    assert set(records.values_list("policy_hash", flat=True)) == {new_hash}
    # 0.7 * 0.6 quiz + 0.1 * (1/14) consistency
    assert set(records.values_list("mastery", flat=True)) == {round(0.42 + 0.1 / 14, 4)}
    history = Snapshot.objects.filter(topic__slug="t.rescore")
    assert set(history.values_list("mastery", flat=True)) == {round(0.42 + 0.1 / 14, 4)}


def test_create_account_takes_several_cohorts_after_one_flag_or_repeated_flags():
    call_command("create_account", "t-many", "--role", "teacher", "--cohort", "c-1", "c-2",
                 "--cohort", "c-3", stdout=io.StringIO())  # fmt: skip
    taught = Cohort.objects.filter(teachers__username="t-many").values_list("cohort_id", flat=True)
    assert sorted(taught) == ["c-1", "c-2", "c-3"]
