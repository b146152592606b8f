"""Analytics' tables, one module per feature; each is imported here so Django finds it."""

from analytics.models.batch import BatchJob, BatchJobItem  # noqa: F401
from analytics.models.predictions import (  # noqa: F401
    BacktestReport,
    FlagFeedback,
    PredictionErrorTally,
    PredictionRecord,
)
from analytics.models.recommendations import Recommendation, RecommendationFeedback  # noqa: F401
