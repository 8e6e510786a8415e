"""Every error class of every package pickles with its fields: errors cross process pools
and result backends, and an error that cannot be unpickled hides the real failure."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from datetime import date
from typing import Any

import pytest

from etl_core.errors import EtlError, FieldError

PACKAGES = ("etl_core", "file_processing", "data_pipeline", "observability")
SAMPLES: dict[str, Any] = {
    "dt": date(2026, 11, 1),
    "partition": date(2026, 11, 1),
    "errors": [FieldError("dataset", "is wrong", "pos.toml:1")],
    "refused": {"lease_seconds": "must be at least 1, got 0"},
    "retry_after": 2.5,
}


def error_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if ".testing" in info.name:
                continue
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, EtlError) and cls.__module__ == module.__name__:
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


def sample(parameter: inspect.Parameter) -> Any:
    if parameter.name in SAMPLES:
        return SAMPLES[parameter.name]
    annotation = str(parameter.annotation)
    if ("int" in annotation or "float" in annotation) and "str" not in annotation:
        return 3
    if "Reason" in annotation:
        from file_processing.reasons import Reason

        return next(iter(Reason))
    return f"sample {parameter.name}"


def build(cls: type[BaseException]) -> BaseException:
    signature = inspect.signature(cls.__init__)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty and parameter.name not in SAMPLES:
            continue
        if parameter.kind == parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = sample(parameter)
        else:
            args.append(sample(parameter))
    return cls(*args, **kwargs)


def test_the_packages_define_error_classes() -> None:
    assert len(error_classes()) > 30


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__qualname__)
def test_every_error_class_round_trips_through_pickle_with_its_fields(
    cls: type[BaseException],
) -> None:
    error = build(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
