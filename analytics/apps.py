from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics.selectors.batch import BatchJobCollector
        from analytics.selectors.predictions import PredictionErrorCollector
        from analytics.selectors.recommendations import recommendation_rules_check
        from analytics.tasks.predictions import predictions_on_students_changed
        from mastery.signals import students_changed
        from mastery_project.metrics import database_collector

        recommendation_rules_check()
        students_changed.connect(predictions_on_students_changed, dispatch_uid="predictions")
        database_collector(PredictionErrorCollector())
        database_collector(BatchJobCollector())
