"""The platform's Django app: models, services (writes), selectors (reads), API, dashboard, review."""
