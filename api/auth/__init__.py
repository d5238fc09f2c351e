"""Credentials: password hashing, API tokens, browser sessions with CSRF protection."""
