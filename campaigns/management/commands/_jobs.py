"""Run a job in this process with a progress bar (for operator commands and the demo)."""
import threading
import time

from django.db import close_old_connections
from tqdm import tqdm

from campaigns.models import Job
from campaigns.services import job_run


def run_job_here(job: Job, work, *, label: str, stream=None) -> Job:
    """Run ``work`` for ``job`` in a thread of this process and show its progress until it ends."""
    def target():
        try:
            job_run(job_id=job.pk, work=work)
        finally:
            close_old_connections()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    with tqdm(total=100, desc=label, unit="%", file=stream, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}", postfix="") as bar:
        while thread.is_alive():
            thread.join(0.3)
            current = Job.objects.get(pk=job.pk)
            bar.n = int(current.progress * 100)
            bar.set_postfix_str(current.message[:60])
        current = Job.objects.get(pk=job.pk)
        bar.n = int(current.progress * 100)
        bar.set_postfix_str(current.message[:60])
    return current
