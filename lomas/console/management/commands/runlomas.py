"""Serve the API for development, with a job worker beside it when the broker is embedded."""

import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Run the development web server on 127.0.0.1 and, with the embedded broker "
        "(CELERY_BROKER_URL unset), a Celery worker process for the query jobs. "
        "Stops both cleanly on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--worker-concurrency", type=int, default=2)

    def handle(self, *args: Any, host: str, port: int, worker_concurrency: int, **options: Any) -> None:
        children: list[subprocess.Popen] = []
        if settings.CELERY_BROKER_URL == "filesystem://" and not settings.CELERY_TASK_ALWAYS_EAGER:
            queues = ",".join(sorted(set(settings.LOMAS_JOB_QUEUES.values())))
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "lomas",
                        "worker",
                        "--queues",
                        queues,
                        "--concurrency",
                        str(worker_concurrency),
                        "--loglevel",
                        "INFO",
                    ]
                )
            )
            self.stdout.write(f"Job worker started (embedded broker, queues {queues}).")
        else:
            self.stdout.write("Jobs go to the configured broker: start workers with `make worker`.")
        children.append(subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"]))

        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Stopped.")
