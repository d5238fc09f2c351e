"""The REST API (FastAPI). Never imports torch: heavy compute runs in the worker."""
