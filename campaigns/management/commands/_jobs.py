"""Run a job in this process with a progress bar (for operator commands and the demo)."""
import threading

from django.db import close_old_connections
from tqdm import tqdm

from campaigns.models import Job
from campaigns.services import job_run


def _quiet_library_bars() -> None:
    # The libraries' own bars (loading components, writing shards) would interleave with ours.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def run_job_here(job: Job, work, *, label: str) -> Job:
    """Run ``work`` for ``job`` in a thread of this process and show its progress until it ends."""
    _quiet_library_bars()

    def target():
        try:
            job_run(job_id=job.pk, work=work)
        finally:
            close_old_connections()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    shown = None
    with tqdm(total=100, desc=label, bar_format="{desc} {percentage:3.0f}%|{bar}|") as bar:
        while True:
            alive = thread.is_alive()
            current = Job.objects.get(pk=job.pk)
            state = (int(current.progress * 100), current.message)
            if state != shown:  # redraw only on change: a log file gets one line per change
                shown = state
                bar.set_description_str(f"{label}: {current.message[:50]}" if current.message else label, refresh=False)
                bar.update(state[0] - bar.n)
            if not alive:
                return current
            thread.join(0.3)
