"""Stopping a child process and everything it started (a Celery worker and its pool, gunicorn and
its workers), as the benchmarks and tests that start them need."""
import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Send ``sig`` to the process's whole group (started with ``start_new_session=True``); SIGKILL
    what is still there after ``timeout`` seconds. SIGKILL as ``sig``: no goodbye, as a preempted node."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
