"""Predictions in the admin.

- The student page: the prediction (overall and per topic) with its reasons, the 14-day
  forecast band on the history chart (`chart_band`), and a form for a verdict on a flag
  that posts to `FlagFeedbackAdmin.record_view`.
- The student list: a "needs intervention" filter, by the same rule as the API's list.
- The cohort page: how many flags of its students were judged, and the share judged
  `incorrectly_flagged`.
- Admins: the latest back-test report, with the same per-cohort shares.
"""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from analytics.models.predictions import BacktestReport, FlagFeedback
from analytics.selectors.predictions import flag_feedback_by_cohort, flag_feedback_of
from analytics.services.predictions import (
    flag_feedback_record,
    prediction_trajectory,
    predictions_by_topic,
    predictions_next_week,
    students_needing_intervention,
    today_utc,
)
from mastery.models import Cohort, Student, Topic
from mastery.selectors import cohorts_visible_to, students_visible_to
from mastery_project.access import student_read
from mastery_project.admin_access import (
    ADMINS,
    STAFF,
    AuditedReads,
    RoleAccess,
    admin_list_filter_for,
    admin_section_for,
    site_role,
)
from mastery_project.errors import NotFound

BAND_DAYS = 14


@admin_list_filter_for(Student)
class NeedsInterventionFilter(admin.SimpleListFilter):
    """Students whose overall next-week prediction is below the threshold (SPEC §3.1):
    computed for the students listed, from the same cached predictions as the API."""

    title = "needs intervention"
    parameter_name = "intervention"

    def lookups(self, request, model_admin):
        return [("yes", "Needs intervention (predicted below threshold)"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in ("yes", "no"):
            return queryset.none()
        refs = list(queryset.order_by().values_list("pk", "student_id"))
        flagged = students_needing_intervention(refs, topic=None, today=today_utc())
        pks = [ref[0] for ref, _ in flagged]
        if self.value() == "yes":
            return queryset.filter(pk__in=pks)
        return queryset.exclude(pk__in=pks)


def _topics_of(student: Student) -> list[Topic]:
    return list(Topic.objects.filter(records__student=student).order_by("slug"))


@admin_section_for(Student, template="admin/analytics/predictions/student.html", order=10)
def student_prediction_section(request: HttpRequest, student: Student) -> dict:
    """The student page has already read its student through the audited lookup."""
    today = today_utc()
    ref = [(student.pk, student.student_id)]
    overall = predictions_next_week(ref, topic=None, today=today)[student.pk]
    topics = predictions_by_topic(student, topics=_topics_of(student), today=today)
    path_ahead = prediction_trajectory(student=student, topic=None, today=today, days=BAND_DAYS)
    return {
        "overall": overall,
        "topics": topics,
        "chart_band": [
            (
                date.fromisoformat(point["date"]),
                point["mastery"],
                point["lower"],
                point["upper"],
            )
            for point in path_ahead["points"]
        ],
        "band_days": BAND_DAYS,
        "feedback": flag_feedback_of(student),
        "verdicts": FlagFeedback.Verdict.choices,
        "record_url": reverse("admin:analytics_flagfeedback_record"),
    }


@admin_section_for(Cohort, template="admin/analytics/predictions/cohort.html", order=30)
def cohort_feedback_section(request: HttpRequest, cohort: Cohort) -> dict:
    summary = flag_feedback_by_cohort(Cohort.objects.filter(pk=cohort.pk)).get(cohort.pk)
    return {"summary": summary}


class FlagVerdictForm(forms.Form):
    """The student page's verdict form. Its fields sit inside the page's own (read-only)
    change form, so they are named `flag-*` and its button posts them here (`formaction`)."""

    student = forms.IntegerField(min_value=1)
    topic = forms.CharField(max_length=100, required=False)
    verdict = forms.ChoiceField(choices=FlagFeedback.Verdict.choices)
    comment = forms.CharField(max_length=2000, required=False)


@admin.register(FlagFeedback)
class FlagFeedbackAdmin(RoleAccess, AuditedReads, admin.ModelAdmin):
    """Verdicts on flags, read-only, for admins (a teacher sees those on a student on the
    student page). New ones come from the student page's form (`record_view`), which
    teachers use too."""

    view_roles = ADMINS
    audit_list_action = "admin.flagfeedback.list"
    audit_view_action = "admin.flagfeedback.view"
    list_display = (
        "created_at",
        "student",
        "topic_name",
        "verdict",
        "flagged",
        "predicted",
        "method",
        "author_username",
    )
    list_filter = ("verdict", "flagged")
    list_select_related = ("student", "topic")
    search_fields = ("=student__student_id",)
    ordering = ("-created_at", "-id")
    fields = (
        "student",
        "topic",
        "verdict",
        "comment",
        "flagged",
        "predicted",
        "method",
        "reason_codes",
        "author_username",
        "author_role",
        "created_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagFeedback]:
        return FlagFeedback.objects.filter(student__in=students_visible_to(request.user))

    def audit_refs(self, obj: FlagFeedback):
        return [obj.student.student_id]

    @admin.display(description="topic", ordering="topic__slug")
    def topic_name(self, obj: FlagFeedback) -> str:
        return obj.topic.slug if obj.topic else "overall"

    def get_urls(self):
        record = path(
            "record/",
            self.admin_site.admin_view(self.record_view),
            name="analytics_flagfeedback_record",
        )
        return [record, *super().get_urls()]

    def record_view(self, request: HttpRequest):
        """POST from the student page: a teacher's (of the student) or an admin's verdict."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if site_role(request) not in STAFF:
            raise PermissionDenied
        form = FlagVerdictForm(request.POST, prefix="flag")
        try:
            student = student_read(
                request, action="admin.prediction.feedback", pk=request.POST.get("flag-student")
            )
        except NotFound:
            raise Http404 from None
        back = reverse("admin:mastery_student_change", args=[student.pk]) + "#predictions"
        if not form.is_valid():
            messages.error(request, "No verdict was recorded: choose a verdict from the list.")
            return HttpResponseRedirect(back)
        values = form.cleaned_data
        topic = None
        if values["topic"]:
            topic = Topic.objects.filter(slug=values["topic"]).first()
            if topic is None:
                messages.error(request, "That topic does not exist: no verdict was recorded.")
                return HttpResponseRedirect(back)
        flag_feedback_record(
            student=student,
            topic=topic,
            verdict=values["verdict"],
            comment=values["comment"],
            author=request.user,
            today=today_utc(),
        )
        label = FlagFeedback.Verdict(values["verdict"]).label.lower()
        messages.success(
            request,
            f"Recorded: the {topic.slug if topic else 'overall'} flag was {label}.",
        )
        return HttpResponseRedirect(back)


@admin.register(BacktestReport)
class BacktestReportAdmin(RoleAccess, admin.ModelAdmin):
    """The latest back-test (admins): its table per scope, what it chose to serve, and per
    cohort the share of judged flags that teachers found incorrect."""

    view_roles = ADMINS
    list_display = ("created_at", "horizon", "cohort_id", "since", "duration_seconds")
    fields = ("created_at", "horizon", "cohort_id", "since", "duration_seconds")
    readonly_fields = fields
    change_form_template = "admin/analytics/predictions/backtest_report.html"

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        cohorts = cohorts_visible_to(request.user).order_by("cohort_id")
        shares = flag_feedback_by_cohort(cohorts)
        context = {
            **(extra_context or {}),
            "cohort_shares": [(cohort, shares.get(cohort.pk)) for cohort in cohorts],
        }
        return super().change_view(request, object_id, form_url, context)
