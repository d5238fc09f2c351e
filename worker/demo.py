"""Old home of ``shapehint.demo``, kept only because ``tests/browser/conftest.py`` still imports
``worker.demo.local_server``. The one exception in ``tests/test_layers.py`` (``SHIMS``); delete
this file once that import reads ``from shapehint.demo import local_server``."""

from __future__ import annotations

from shapehint.demo import local_server, run_demo

__all__ = ["local_server", "run_demo"]
