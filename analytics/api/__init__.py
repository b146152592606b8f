"""Analytics endpoints, one module per feature; `mastery_project.api` registers them."""
