"""Load the demo set: datasets with their metadata, users, budgets (idempotent)."""

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from accounts.services import user_create
from budgets.models import Budget
from budgets.services import budget_grant
from datasets.dummy import make_dummy_frame
from datasets.models import Dataset
from datasets.services import dataset_create
from lomas.errors import LomasError

DEMO_DIR = Path(settings.BASE_DIR) / "datasets" / "demo"


class Command(BaseCommand):
    help = (
        "Load the demo datasets, users and budgets from datasets/demo/demo.yaml. "
        "Existing entries are left as they are, so running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=DEMO_DIR / "demo.yaml", help="Demo set (YAML).")
        parser.add_argument(
            "--skip-generated",
            action="store_true",
            help="Do not synthesize the datasets whose data is generated from metadata (large).",
        )

    def handle(self, *args: Any, file: Path, skip_generated: bool, **options: Any) -> None:
        try:
            demo = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"Cannot read the demo set {file}: {exc}") from exc
        data_dir = Path(settings.LOMAS_DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            with transaction.atomic():
                for entry in demo["datasets"]:
                    if "generate" in entry and skip_generated:
                        continue
                    self._dataset(entry, file.parent, data_dir)
                for entry in demo["users"]:
                    self._user(entry)
        except LomasError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS("Demo set loaded."))

    def _dataset(self, entry: dict[str, Any], base: Path, data_dir: Path) -> None:
        name = entry["name"]
        metadata = json.loads((base / entry["metadata"]).read_text(encoding="utf-8"))
        if "generate" in entry:
            file_name = f"{name.lower()}.parquet"
            target = data_dir / file_name
            if not target.exists():
                rows, seed = entry["generate"]["rows"], entry["generate"]["seed"]
                self.stdout.write(f"Synthesizing {name}: {rows} rows from its metadata (seed {seed})...")
                frame = make_dummy_frame(metadata, nb_rows=rows, seed=seed)
                partial = target.with_suffix(".partial")
                frame.to_parquet(partial, index=False)
                partial.rename(target)
        else:
            source = base / entry["data"]
            file_name = source.name
            target = data_dir / file_name
            if not target.exists() or target.read_bytes() != source.read_bytes():
                shutil.copyfile(source, target)
        if Dataset.objects.filter(name=name).exists():
            return
        dataset_create(name=name, metadata=metadata, path=file_name)
        self.stdout.write(f"Dataset {name} registered ({file_name}).")

    def _user(self, entry: dict[str, Any]) -> None:
        user = User.objects.filter(username=entry["name"]).first()
        if user is None:
            user = user_create(
                username=entry["name"],
                email=entry.get("email", ""),
                password=entry.get("password"),
                is_lomas_admin=bool(entry.get("admin", False)),
            )
            self.stdout.write(f"User {user.username} created.")
        for grant in entry.get("budgets", []):
            dataset = Dataset.objects.filter(name=grant["dataset"]).first()
            if dataset is None or Budget.objects.filter(user=user, dataset=dataset).exists():
                continue
            budget_grant(
                user=user,
                dataset=dataset,
                epsilon=grant["epsilon"],
                delta=grant["delta"],
                spent_epsilon=grant.get("spent_epsilon", 0),
                spent_delta=grant.get("spent_delta", 0),
            )
            self.stdout.write(f"Budget of {user.username} on {dataset.name} granted.")
