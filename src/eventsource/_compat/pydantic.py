"""pydantic: the model's compiled serializer and validators, called without the keyword
plumbing of `model_dump_json` / `model_validate_json` (a tenth of a small event's cost).

`FAST` is False when a pydantic release lacks the attributes used; every function then falls
back to the public API, with identical results (tests/unit/test_compat_shims.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

__all__ = [
    "FAST",
    "dump_json",
    "has_custom_serialization",
    "json_validator",
    "plain_dump_json",
    "plain_has_custom_serialization",
    "plain_json_validator",
    "plain_python_validator",
    "python_validator",
]

FAST: bool = all(
    hasattr(BaseModel, name)
    for name in ("__pydantic_serializer__", "__pydantic_validator__", "__pydantic_decorators__")
)


def plain_dump_json(model: BaseModel) -> str:
    """The model's JSON through the public API."""
    return model.model_dump_json()


def _fast_dump_json(model: BaseModel) -> str:
    return model.__pydantic_serializer__.to_json(model).decode()


def plain_json_validator(cls: type[BaseModel]) -> Callable[[str | bytes], Any]:
    """`cls.model_validate_json`."""
    return cls.model_validate_json


def _fast_json_validator(cls: type[BaseModel]) -> Callable[[str | bytes], Any]:
    return cls.__pydantic_validator__.validate_json


def plain_python_validator(cls: type[BaseModel]) -> Callable[[Any], Any]:
    """`cls.model_validate`."""
    return cls.model_validate


def _fast_python_validator(cls: type[BaseModel]) -> Callable[[Any], Any]:
    return cls.__pydantic_validator__.validate_python


def plain_has_custom_serialization(cls: type[BaseModel]) -> bool:
    """Without the decorator table nothing is known: assume custom serializers (callers then
    take their slow, always-correct path)."""
    del cls
    return True


def _fast_has_custom_serialization(cls: type[BaseModel]) -> bool:
    decorators = cls.__pydantic_decorators__
    return bool(decorators.field_serializers or decorators.model_serializers)


dump_json: Callable[[BaseModel], str] = _fast_dump_json if FAST else plain_dump_json
"""The model's full JSON dump, as `model_dump_json()` with its defaults writes it."""
json_validator: Callable[[type[BaseModel]], Callable[[str | bytes], Any]] = (
    _fast_json_validator if FAST else plain_json_validator
)
"""A callable validating JSON text into an instance of `cls` (as `model_validate_json`)."""
python_validator: Callable[[type[BaseModel]], Callable[[Any], Any]] = (
    _fast_python_validator if FAST else plain_python_validator
)
"""A callable validating a dict into an instance of `cls` (as `model_validate`)."""
has_custom_serialization: Callable[[type[BaseModel]], bool] = (
    _fast_has_custom_serialization if FAST else plain_has_custom_serialization
)
"""True when `cls` declares field or model serializers (its JSON is not its values)."""
