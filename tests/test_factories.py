"""factory_boy factories: one per model, each making a row its model's own validation accepts."""
import inspect

import pytest
from django.apps import apps
from factory.django import DjangoModelFactory

from tests import factories

pytestmark = pytest.mark.django_db

FACTORIES = {f._meta.model: f for _, f in inspect.getmembers(factories, inspect.isclass)
             if issubclass(f, DjangoModelFactory) and f is not DjangoModelFactory and f._meta.model}


def test_every_model_has_a_factory():
    missing = [m.__name__ for m in apps.get_app_config("campaigns").get_models() if m not in FACTORIES]
    assert missing == []


@pytest.mark.parametrize("model", sorted(FACTORIES, key=lambda m: m.__name__), ids=lambda m: m.__name__)
def test_a_factory_row_is_valid(model):
    row = FACTORIES[model]()
    row.full_clean()  # the model's own field rules and constraints
    organization = getattr(row, "organization_id", None)
    for field in model._meta.get_fields():
        # A row's parents belong to its own organization, as every query assumes.
        if field.many_to_one and hasattr(field.related_model, "organization") and getattr(row, field.name) is not None:
            assert getattr(row, field.name).organization_id == organization, field.name
