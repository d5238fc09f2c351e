"""Persistence shared by the API and the worker: settings, SQLAlchemy tables, sessions, blobs."""
