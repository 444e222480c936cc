"""Menus of model rows (a practice, specialties) read with one plain query.

Django's `ModelChoiceIterator` reads its queryset with `.iterator()`. On
PostgreSQL that opens a server-side cursor, and outside a transaction Django
declares it `WITH HOLD`: DECLARE, FETCH and CLOSE, three round trips and a
result the server copies aside, for a menu of a few dozen rows, on every page
that draws one (the platform auditor's report and dashboard, the provider's
profile). The fields here read the rows as one query into the field's own copy
of the queryset (Django copies a field, and its queryset, for each form), which
also serves a second look at the menu on the same form.

Use them wherever a form or filter would take Django's or django-filter's model
choice fields; `tests/ehr/test_model_choices.py` holds the project to it.
"""

import django_filters
from django import forms
from django.forms.models import ModelChoiceIterator
from django_filters import fields as filter_fields


class OneQueryChoiceIterator(ModelChoiceIterator):
    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:  # evaluated once and kept, not `.iterator()`
            yield self.choice(obj)


class ModelChoiceField(forms.ModelChoiceField):
    iterator = OneQueryChoiceIterator


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    iterator = OneQueryChoiceIterator


class _FilterChoiceIterator(filter_fields.ModelChoiceIterator, OneQueryChoiceIterator):
    """django-filter's iterator (its "null" choice) over the one-query one."""


class _FilterModelChoiceField(filter_fields.ModelChoiceField):
    iterator = _FilterChoiceIterator


class ModelChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = _FilterModelChoiceField
