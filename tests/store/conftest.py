"""Fixtures of the store tests: ``s3_endpoint``, a moto S3 server for the session."""

from tests.s3_server import s3_endpoint

__all__ = ["s3_endpoint"]
