"""Pure analytics (no Django): forecasts and their back-test, recommendations and the
learning path, statistics."""
