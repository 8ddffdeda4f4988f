"""The registry builds exactly the ops the schema describes."""

from __future__ import annotations

from trainer.configs.dataset_schema.ops import DATAFILTER_OPS, TRANSFORM_OPS
from trainer.data.transforms import DATAFILTER_REGISTRY, TRANSFORM_REGISTRY


def test_registry_names_equal_schema_names():
    assert set(TRANSFORM_REGISTRY) == set(TRANSFORM_OPS)
    assert set(DATAFILTER_REGISTRY) == set(DATAFILTER_OPS)
