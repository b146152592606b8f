"""What mastery stores about a student: the student, its login and the login's refresh
tokens, its cohort memberships, its records and its snapshots (see `mastery_project.privacy`)."""

from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from mastery.models import Cohort, MasteryRecord, Snapshot, Student, User
from mastery_project.privacy import Export, StudentData

STUDENT_DATA = (
    StudentData(
        kind="students",
        model=Student,
        student_field="student_id",
        rows=lambda student: Student._base_manager.filter(pk=student.pk),
        export=Export(
            "student",
            lambda rows: rows.values(
                "student_id", "analytics_consent", "created_at", "last_activity_at"
            ),
        ),
    ),
    # A login is personal data of its student: erased with it, not kept deactivated.
    StudentData(
        kind="logins",
        model=User,
        student_field="student",
        export=Export("student.login", lambda rows: rows.values("username", "role", "date_joined")),
    ),
    # The login's refresh tokens (simplejwt's outstanding and blacklisted tokens): erased
    # before the login, whose deletion would only orphan them.
    StudentData(
        kind="login_tokens",
        model=OutstandingToken,
        student_field="user",
        rows=lambda student: OutstandingToken.objects.filter(user__student=student),
    ),
    StudentData(
        kind="cohort_memberships",
        model=Cohort.students.through,
        student_field="student",
        export=Export(
            "cohorts",
            lambda rows: (
                Cohort.objects.filter(pk__in=rows.values("cohort"))
                .order_by("cohort_id")
                .values("cohort_id", "name")
            ),
        ),
    ),
    StudentData(
        kind="mastery_records",
        model=MasteryRecord,
        student_field="student",
        export=Export(
            "derived.mastery_records",
            lambda rows: rows.order_by("topic__slug").values(
                "topic__slug",
                "mastery",
                "level",
                "completion",
                "quiz",
                "quality",
                "consistency",
                "updated_at",
            ),
        ),
    ),
    StudentData(
        kind="snapshots",
        model=Snapshot,
        student_field="student",
        export=Export(
            "derived.snapshots",
            lambda rows: rows.order_by("topic__slug", "day").values(
                "topic__slug", "day", "mastery", "completion", "quiz", "quality", "consistency"
            ),
        ),
        retention_setting="RETENTION_SNAPSHOTS_DAYS",
        retention_field="day",
    ),
)
