from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics.selectors.recommendations import recommendation_rules_check

        recommendation_rules_check()
