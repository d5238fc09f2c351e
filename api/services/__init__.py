"""Business logic as plain functions taking a SQLAlchemy session (testable without HTTP)."""
