"""Every form field the project declares, for tests that hold all of them to a rule."""

import importlib
import inspect
import pkgutil

import django_filters
from django import forms

APPS = ["accounts", "alerts", "audit", "break_glass", "ehr", "outbox", "support_pin"]


def project_fields():
    """Every form field declared by a form or filter set of the project, by where it lives."""
    found = {}
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, f"{app}."):
            if ".migrations" in info.name or ".management" in info.name:
                continue
            module = importlib.import_module(info.name)
            for cls_name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__:
                    continue
                if issubclass(cls, forms.BaseForm):
                    for name, field in cls.base_fields.items():
                        found[f"{cls.__module__}.{cls_name}.{name}"] = field
                elif issubclass(cls, django_filters.FilterSet):
                    for name, declared in cls.base_filters.items():
                        found[f"{cls.__module__}.{cls_name}.{name}"] = declared.field
    return found
