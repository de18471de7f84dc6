"""A load generator for the live stack: researchers in threads, each submitting jobs over HTTP one
after the other and reading each result at once (the status route waits for the job)."""

import itertools
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

BUSY = "is trying to query before end of previous query"


def job_route(route: str, kind: str) -> str:
    """The route of a job kind ("query", "dummy", "cost") for a library's query route."""
    library = route.removesuffix("_query")
    return {"query": f"{library}_query", "dummy": f"dummy_{library}_query", "cost": f"estimate_{library}_cost"}[kind]


def job_body(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """A query body for a job kind (a dummy query names its dummy rows and seed, as lomas-client does)."""
    return {**body, "dummy_nb_rows": 100, "dummy_seed": 42} if kind == "dummy" else body


@dataclass
class LoadResult:
    """What the researchers saw: final job states, every HTTP status, wall time."""

    seconds: float = 0.0
    jobs: Counter = field(default_factory=Counter)  # (route, final status or error type) -> count
    http_statuses: Counter = field(default_factory=Counter)
    errors: list[dict] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(count for (_, outcome), count in self.jobs.items() if outcome == "complete")


class Researcher:
    """One researcher's HTTP session (bearer token), recording what it sees into a LoadResult."""

    def __init__(self, api: str, token: str, result: LoadResult) -> None:
        self.api, self.result = api, result
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _record(self, response: requests.Response) -> dict:
        self.result.http_statuses[response.status_code] += 1
        return response.json()

    def run_job(self, route: str, body: dict[str, Any], timeout: float = 600) -> dict:
        """Submit one job and read its final state (a busy refusal of a real query is submitted again)."""
        deadline = time.monotonic() + timeout
        while True:
            accepted = self.session.post(f"{self.api}/{route}", json=body, timeout=60)
            job = self._record(accepted)
            if accepted.status_code != 202:
                self._outcome(route, job.get("type", str(accepted.status_code)), job)
                return job
            while job["status"] == "in_progress" and time.monotonic() < deadline:
                job = self._record(self.session.get(f"{self.api}/status/{job['uid']}", timeout=60))
            if job["status"] == "failed" and BUSY in (job.get("error") or {}).get("message", ""):
                self.result.jobs[(route, "refused busy, resubmitted")] += 1
                continue
            self._outcome(route, job["status"], job)
            return job

    def _outcome(self, route: str, outcome: str, job: dict) -> None:
        self.result.jobs[(route, outcome)] += 1
        if outcome != "complete":
            self.result.errors.append({"route": route, **job})


def run_load(api: str, tokens: list[str], jobs: list[tuple[str, dict[str, Any]]], per_user: int) -> LoadResult:
    """Each researcher (one thread per token) runs `per_user` jobs, cycling through `jobs` from its own start."""
    result = LoadResult()

    def researcher_load(index: int) -> None:
        researcher = Researcher(api, tokens[index], result)
        mix = itertools.islice(itertools.cycle(jobs), index, None)
        for route, body in itertools.islice(mix, per_user):
            researcher.run_job(route, body)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        list(pool.map(researcher_load, range(len(tokens))))
    result.seconds = time.perf_counter() - started
    return result
