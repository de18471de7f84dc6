"""The overview page against a real stack: PostgreSQL, Redis and a Celery worker that can die."""

import re
from pathlib import Path

import requests

from tests.integration.conftest import start_stack


def admin_session(base_url: str) -> requests.Session:
    """A browser-like session signed in to Django admin as the demo admin."""
    session = requests.Session()
    session.get(f"{base_url}/admin/login/", timeout=30)
    response = session.post(
        f"{base_url}/admin/login/?next=/admin/",
        data={"username": "admin", "password": "admin", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base_url}/admin/login/"},
        timeout=30,
    )
    assert "Lomas dashboard" in response.text, response.text[-2000:]
    return session


def health_rows(page: str) -> dict[str, str]:
    table = page.split('id="service-health"', 1)[1].split("</table>", 1)[0]
    return dict(re.findall(r"<tr><td>(\w+)</td><td class=\"status-\w+\">(ok|down)</td>", table))


def test_overview_sees_the_worker_and_notices_when_it_dies(tmp_path: Path) -> None:
    with start_stack(tmp_path / "var", celery_workers=1, concurrency=1, web_workers=1) as stack:
        stack.add_researchers({"Zed": ("zed-password", {"PENGUIN": (10.0, 0.001)})})
        stack.manage(
            "shell",
            "-c",
            "import uuid\n"
            "from accounts.models import User\n"
            "from budgets.services import budget_charge\n"
            "from datasets.models import Dataset\n"
            "for epsilon in (0.25, 0.5):\n"
            "    budget_charge(user=User.objects.get(username='Zed'), dataset=Dataset.objects.get(name='PENGUIN'),\n"
            "                  epsilon=epsilon, delta=0, job_uid=uuid.uuid4())\n",
        )
        session = admin_session(stack.base_url)

        page = session.get(f"{stack.base_url}/admin/overview/", timeout=30).text
        assert health_rows(page) == {"Database": "ok", "Broker": "ok", "Workers": "ok"}
        assert "1 worker(s) answered" in page
        assert 'class="cumulative-chart' in page and "PENGUIN (ε 0.75)" in page  # charges only, added up
        assert "Zed</text>" in page.split('id="top-consumers"', 1)[1]

        worker = stack.processes[0]
        worker.kill()
        worker.wait(timeout=30)
        page = session.get(f"{stack.base_url}/admin/overview/", timeout=30).text
        assert health_rows(page) == {"Database": "ok", "Broker": "ok", "Workers": "down"}
        assert "0 worker(s) answered" in page
