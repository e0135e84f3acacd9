"""The dead-worker watchdog that every Celery worker runs (see campaigns.services.jobs).

A thread started when the worker is ready says the worker is alive (`FleetWorker.seen_at`,
which adapter-affine routing reads) and calls `jobs_requeue_stale` (and `asset_checks_due`, for
brand clips whose check a dead worker left), every
JOB_WATCHDOG_INTERVAL_S. Every worker runs one, so the job of a dead worker is requeued as long
as any worker lives; `select_for_update(skip_locked=True)` keeps two watchdogs from requeuing
the same job twice.
"""
import logging
import threading
import time

logger = logging.getLogger(__name__)

_started = threading.Event()


def watchdog_loop(hostname: str, gpu: bool) -> None:
    from django.conf import settings
    from django.db import DatabaseError, connection

    from campaigns.services.asset_checks import asset_checks_due
    from campaigns.services.fleet import fleet_worker_seen
    from campaigns.services.jobs import jobs_requeue_stale

    # A daemon thread: it ends with its worker. The first look comes at once (routing to this
    # worker's own queue needs it alive), then one every JOB_WATCHDOG_INTERVAL_S.
    while True:
        try:
            fleet_worker_seen(hostname=hostname, gpu=gpu)
            jobs_requeue_stale()
            asset_checks_due()
        except DatabaseError as exc:  # the database is away; look again next time
            logger.warning("job watchdog: %s", exc)
        finally:
            connection.close()  # hold no connection between looks (4 a minute)
        time.sleep(settings.JOB_WATCHDOG_INTERVAL_S)


def watchdog_start(hostname: str, *, gpu: bool = False) -> threading.Thread | None:
    """Start this process's watchdog thread, once; returns it (None when one already runs)."""
    if _started.is_set():
        return None
    _started.set()
    thread = threading.Thread(target=watchdog_loop, args=(hostname, gpu),
                              name="job-watchdog", daemon=True)
    thread.start()
    return thread
