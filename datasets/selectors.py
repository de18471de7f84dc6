"""Reads on datasets."""

from django.conf import settings

from accounts.models import User
from datasets.collections import dataset_name_check
from datasets.models import Dataset
from lomas.errors import UNKNOWN_DATASET, InvalidQuery


def dataset_get_by_name(*, name: str) -> Dataset:
    """The dataset, or 400 'Dataset X does not exist' (spec §1.2)."""
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise InvalidQuery(UNKNOWN_DATASET.format(dataset=name))
    return dataset


def dataset_require_new_name(*, name: str) -> None:
    """400 unless `name` follows the dataset name rule and no dataset has it yet."""
    dataset_name_check(name)
    if Dataset.objects.filter(name=name).exists():
        raise InvalidQuery(f"Dataset {name} already exists.")


def dataset_list_names() -> list[str]:
    """Names of every dataset."""
    return list(Dataset.objects.order_by("name").values_list("name", flat=True))


def dummy_check_rows(*, nb_rows: int) -> None:
    """A dummy dataset larger than the configured cap is refused (400), not attempted."""
    if nb_rows > settings.LOMAS_DUMMY_MAX_ROWS:
        raise InvalidQuery(f"dummy_nb_rows must be at most {settings.LOMAS_DUMMY_MAX_ROWS} (asked for {nb_rows}).")


def dataset_list_names_for_user(*, user: User) -> list[str]:
    """Names of the datasets a user has a budget on."""
    return list(Dataset.objects.filter(budgets__user=user).order_by("name").values_list("name", flat=True))


def dataset_list() -> list[Dataset]:
    """Every dataset."""
    return list(Dataset.objects.order_by("name"))


def dataset_list_hot() -> list[Dataset]:
    """The datasets workers prepare when they start (settings.LOMAS_HOT_DATASETS; "*" for every one)."""
    names = settings.LOMAS_HOT_DATASETS
    datasets = Dataset.objects.order_by("name")
    return list(datasets if "*" in names else datasets.filter(name__in=names))
