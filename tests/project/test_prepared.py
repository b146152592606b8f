"""`mastery_project.prepared.PreparedQuery` and `mastery_project.access.visible_student`:
the student a caller may see, and its mastery, read in SQL compiled once per role and
shape, must be what the querysets and the ORM path give, for every role and every kind of
student id (visible, invisible, nonexistent)."""

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mastery import selectors
from mastery.models import MasteryRecord, Student, User
from mastery.serializers import MasteryQueryOutput
from mastery_project import access
from mastery_project.errors import NotFound
from mastery_project.prepared import PreparedQuery
from tests.factories import StudentFactory, TopicFactory, UserFactory, ingest_all, two_cohort_school
from tests.mastery.api.support import learning_event

pytestmark = pytest.mark.django_db

STUDENT_IDS = ("s-a1", "s-a2", "s-b1", "s-nobody")
ROLES = ("admin", "service", "teacher", "other_teacher", "student", "student_without_student")
TOPICS = (None, "python.loops", "sql.joins", "no.such.topic")


@pytest.fixture
def users() -> dict[str, User]:
    """The two-cohort school with records: s-a1 in two topics, s-a2 in one, s-b1 in none
    (sql.joins exists but only s-a1 has a record in it); plus a student login that has no
    Student linked."""
    students = {sid: StudentFactory(student_id=sid) for sid in STUDENT_IDS[:3]}
    users, _ = two_cohort_school(students)
    TopicFactory(slug="python.loops")
    TopicFactory(slug="sql.joins")
    ingest_all(
        [
            learning_event("s-a1", "python.loops", "quiz.submitted"),
            learning_event("s-a1", "python.loops", "exercise.completed"),
            learning_event("s-a1", "sql.joins", "code.reviewed"),
            learning_event("s-a2", "python.loops", "session.completed"),
        ]
    )
    users["student_without_student"] = UserFactory(username="no-student", role=User.Role.STUDENT)
    return users


@pytest.fixture
def fresh_prepared(monkeypatch) -> list[str]:
    """`visible_student` with nothing compiled yet; returns the role of each compilation."""
    monkeypatch.setattr(access, "_prepared", {})
    built: list[str] = []
    real = PreparedQuery._compile

    def counting(self, constants, values):
        built.append(constants["role"])
        return real(self, constants, values)

    monkeypatch.setattr(PreparedQuery, "_compile", counting)
    return built


def orm_student(user: User, student_id: str) -> Student | None:
    return selectors.students_visible_to(user).filter(student_id=student_id).first()


def pk_of(student: Student | None) -> int | None:
    return None if student is None else student.pk


@pytest.mark.parametrize("with_data", [None, selectors.student_with_mastery], ids=["bare", "data"])
def test_visible_student_is_the_querysets_student_for_every_role_and_id(
    users, fresh_prepared, with_data
):
    seen = {}
    for role in ROLES:
        for sid in STUDENT_IDS:
            student = access.visible_student(users[role], sid, with_data, {})
            assert pk_of(student) == pk_of(orm_student(users[role], sid)), (role, sid)
            seen[role, sid] = student is not None
    # The table is not trivially all-None or all-found: the rule is what is compared.
    assert {sid for (role, sid), found in seen.items() if found and role == "teacher"} == {
        "s-a1",
        "s-a2",
    }
    assert {sid for (role, sid), found in seen.items() if found and role == "student"} == {"s-a1"}
    assert not any(found for (role, _), found in seen.items() if role == "student_without_student")
    assert not any(found for (_, sid), found in seen.items() if sid == "s-nobody")


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("role", ROLES)
def test_mastery_of_the_prepared_student_is_the_orm_paths(users, role, topic):
    for sid in STUDENT_IDS:
        expected = orm_student(users[role], sid)
        student = access.visible_student(
            users[role], sid, selectors.student_with_mastery, {"topic": topic}
        )
        assert pk_of(student) == pk_of(expected), (role, sid, topic)
        if student is None:
            continue
        if topic == "no.such.topic":
            with pytest.raises(NotFound) as prepared_error:
                selectors.mastery_of_student(student, topic=topic)
            with pytest.raises(NotFound) as orm_error:
                selectors.mastery_for_student(expected, topic=topic)
            assert prepared_error.value.code == orm_error.value.code == "topic_not_found"
            continue
        mastery = selectors.mastery_of_student(student, topic=topic)
        assert mastery == selectors.mastery_for_student(expected, topic=topic), (role, sid)


def test_the_compared_mastery_has_records_in_it(users):
    """The comparison above is over real records, not only empty documents."""
    student = access.visible_student(users["admin"], "s-a1", selectors.student_with_mastery, {})
    mastery = selectors.mastery_of_student(student)
    assert [t.topic for t in mastery.topics] == ["python.loops", "sql.joins"]
    assert all(t.updated_at is not None and t.mastery > 0 for t in mastery.topics)
    assert mastery.overall_mastery > 0


@pytest.mark.parametrize("role", ["admin", "teacher", "student"])
def test_the_second_read_of_a_shape_is_one_query_and_no_compilation(users, fresh_prepared, role):
    user = users[role]
    access.visible_student(user, "s-a1", selectors.student_with_mastery, {"topic": None})
    assert fresh_prepared == [role]
    with CaptureQueriesContext(connection) as queries:
        student = access.visible_student(
            user, "s-a2", selectors.student_with_mastery, {"topic": None}
        )
    assert len(queries) == 1
    assert fresh_prepared == [role]
    assert pk_of(student) == pk_of(orm_student(user, "s-a2"))


def test_a_topic_is_a_value_of_the_same_shape_not_a_new_one(users, fresh_prepared):
    admin = users["admin"]
    first = access.visible_student(
        admin, "s-a1", selectors.student_with_mastery, {"topic": "python.loops"}
    )
    with CaptureQueriesContext(connection) as queries:
        second = access.visible_student(
            admin, "s-a1", selectors.student_with_mastery, {"topic": "sql.joins"}
        )
    assert (len(queries), fresh_prepared) == (1, ["admin"])
    assert [t.topic for t in selectors.mastery_of_student(first, topic="python.loops").topics] == [
        "python.loops"
    ]
    assert [t.topic for t in selectors.mastery_of_student(second, topic="sql.joins").topics] == [
        "sql.joins"
    ]


def test_a_teachers_shape_is_not_an_admins(users, fresh_prepared):
    """The role is a constant of the shape: a teacher never runs the admin's SQL (which
    would show it cohort B's student)."""
    assert access.visible_student(users["admin"], "s-b1") is not None
    assert access.visible_student(users["teacher"], "s-b1") is None
    assert access.visible_student(users["teacher"], "s-a2") is not None
    assert fresh_prepared == ["admin", "teacher"]


def test_a_student_without_a_student_is_a_shape_of_its_own(users, fresh_prepared):
    """None is part of the shape: the login without a Student sees nothing, and compiling
    its shape first does not make a student login with one see nothing too."""
    nobody = users["student_without_student"]
    with CaptureQueriesContext(connection) as queries:
        assert access.visible_student(nobody, "s-a1") is None
        assert access.visible_student(nobody, "s-a1") is None
    assert len(queries) == 0  # the shape matches nothing: not even a round trip
    assert access.visible_student(users["student"], "s-a1").student_id == "s-a1"
    assert fresh_prepared == ["student", "student"]


def test_a_build_that_rewrites_a_text_value_is_refused(users):
    prepared = PreparedQuery(
        lambda *, student_id: Student.objects.filter(student_id__icontains=student_id)
    )
    with pytest.raises(ImproperlyConfigured, match="rewritten"):
        prepared.first({}, {"student_id": "s-a"})


def test_an_exact_text_value_is_bound_as_given(users):
    prepared = PreparedQuery(lambda *, student_id: Student.objects.filter(student_id=student_id))
    assert prepared.first({}, {"student_id": "s-b1"}).student_id == "s-b1"
    assert prepared.first({}, {"student_id": "s-a2"}).student_id == "s-a2"
    assert prepared.first({}, {"student_id": "s-a"}) is None


@pytest.mark.parametrize("value", [True, False, 1.5, 0.0], ids=repr)
def test_a_bool_or_float_value_is_refused(users, value):
    prepared = PreparedQuery(lambda *, pk: Student.objects.filter(pk=pk))
    with pytest.raises(ImproperlyConfigured, match="int or a str"):
        prepared.first({}, {"pk": value})


def test_whole_numbers_read_back_as_floats_as_the_orm_gives_them(users):
    """JSON writes the float 1.0 as 1: the document must still say 1.0, as the ORM path
    (and the batch results built on it) do."""
    MasteryRecord.objects.filter(student__student_id="s-a1").update(completion=1.0, quiz=0.0)
    student = access.visible_student(users["admin"], "s-a1", selectors.student_with_mastery, {})
    prepared = MasteryQueryOutput(selectors.mastery_of_student(student)).data
    orm = MasteryQueryOutput(selectors.mastery_for_student(Student.objects.get(student_id="s-a1")))
    assert orjson.dumps(prepared) == orjson.dumps(orm.data)
    assert {type(t["components"]["completion"]) for t in prepared["topics"]} == {float}


def test_a_value_that_changes_the_sql_itself_is_refused(users):
    """A value the ORM writes into the SQL (here a slice's bound) rather than binding it
    as a parameter would be compiled once and run for every later value: refused."""
    prepared = PreparedQuery(lambda *, n: Student.objects.order_by("pk")[n:])
    with pytest.raises(ImproperlyConfigured, match="changed the SQL"):
        prepared.first({}, {"n": 1})
