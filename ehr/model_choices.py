"""Menus of model rows (the specialties) read with one plain query.

Django's `ModelChoiceIterator` reads its queryset with `.iterator()`. On
PostgreSQL that opens a server-side cursor, and outside a transaction Django
declares it `WITH HOLD`: DECLARE, FETCH and CLOSE, three round trips and a
result the server copies aside, for a menu of a few dozen rows, on every page
that draws one (the provider's profile). The fields here read the rows as one query into the field's own copy
of the queryset (Django copies a field, and its queryset, for each form), which
also serves a second look at the menu on the same form.

Use them wherever a form would draw a menu of model rows; a choice among rows
that grow with the platform (practices) is a box that suggests as one types
instead. `tests/ehr/test_model_choices.py` holds the project to both.
"""

from django import forms
from django.forms.models import ModelChoiceIterator


class OneQueryChoiceIterator(ModelChoiceIterator):
    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:  # evaluated once and kept, not `.iterator()`
            yield self.choice(obj)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    iterator = OneQueryChoiceIterator
