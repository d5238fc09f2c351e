"""``shapehint serve``: migrate, ensure an admin, start the embedded worker, run uvicorn."""

from __future__ import annotations

import contextlib
import signal
import sys

from store.settings import Settings, get_settings


def prepare(settings: Settings) -> tuple[object, object]:
    """Migrate the database and build the app; returns ``(app, Bootstrap)``."""
    from api.app import create_app
    from api.services.users import ensure_admin
    from store.migrate import upgrade_head

    settings.ensure_dirs()
    upgrade_head(settings.resolved_database_url)
    app = create_app(settings)
    with app.state.session_factory() as session:
        boot = ensure_admin(session, settings.bootstrap_token)
    return app, boot


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(host: str = "127.0.0.1", port: int = 8000, embedded_worker: bool = True) -> None:
    import uvicorn

    settings = get_settings()
    app, boot = prepare(settings)
    shown_host = "localhost" if host in ("0.0.0.0", "::") else host
    print(f"shapehint is serving at http://{shown_host}:{port}/  (API docs: /docs)", flush=True)
    if getattr(boot, "token", None):
        # Shown once: only the hashes are stored.
        print(
            f"created administrator {boot.username!r}\n"  # type: ignore[attr-defined]
            f"  API token: {boot.token}\n"  # type: ignore[attr-defined]
            f"  password:  {boot.password}\n"  # type: ignore[attr-defined]
            "  (shown only now; store them safely)",
            flush=True,
        )
    worker_ctx: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if embedded_worker:
        from worker.embedded import start_embedded_worker

        worker_ctx = start_embedded_worker(settings)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that would
    # kill this process before the embedded worker is stopped, orphaning it.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with worker_ctx:
        uvicorn.run(app, host=host, port=port, log_level="warning")  # type: ignore[arg-type]
    sys.stdout.flush()
