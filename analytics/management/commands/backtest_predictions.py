from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.domain.backtest import report_table
from analytics.domain.forecast import HORIZON_DAYS, WINDOW_DAYS
from analytics.services.predictions import backtest_run, today_utc
from mastery.models import Cohort
from mastery_project.access import aggregate_read_audit


class Command(BaseCommand):
    help = (
        "Replay the stored snapshots day by day (rolling origin), predict --horizon days ahead "
        "with every forecaster and naive, and print MAE, RMSE, band coverage and the flags' "
        "precision and recall (SPEC §3.1). Keeps the report; a 7-day run also chooses the "
        "forecasters served from then on. Students without analytics consent are left out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--horizon", type=int, default=HORIZON_DAYS, help=f"days ahead (1-{WINDOW_DAYS})"
        )
        parser.add_argument("--cohort", help="only this cohort's students (its cohort_id)")
        parser.add_argument("--since", help="first origin day, YYYY-MM-DD (UTC)")

    def handle(self, *args, horizon: int, cohort: str | None, since: str | None, **options):
        if not 1 <= horizon <= WINDOW_DAYS:
            raise CommandError(f"--horizon must be between 1 and {WINDOW_DAYS} days")
        now = timezone.now()
        first = self.parse_since(since, today=today_utc(now))
        chosen = None
        if cohort is not None:
            chosen = Cohort.objects.filter(cohort_id=cohort).first()
            if chosen is None:
                raise CommandError(f"no cohort {cohort!r}")
        saved = backtest_run(horizon=horizon, cohort=chosen, since=first, now=now)
        # Figures over many students, no one student's own: one entry naming none.
        aggregate_read_audit(
            None,
            action="prediction.backtest",
            resource=f"backtest_predictions --horizon {horizon}"
            + (f" --cohort {cohort}" if cohort else "")
            + (f" --since {since}" if since else ""),
        )
        self.stdout.write(report_table(saved.report))
        if horizon != HORIZON_DAYS:
            self.stdout.write(
                f"\nNot a {HORIZON_DAYS}-day run: the forecasters served are unchanged."
            )

    @staticmethod
    def parse_since(value: str | None, *, today: date) -> date | None:
        if value is None:
            return None
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--since must be a date YYYY-MM-DD, got {value!r}") from None
        if parsed > today:
            raise CommandError(f"--since {parsed} is after today ({today})")
        return parsed
