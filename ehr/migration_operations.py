"""Schema operations that do not hold writes while they run, where the database allows."""

from django.db import migrations


class AddIndexConcurrently(migrations.AddIndex):
    """Add an index without blocking writes where the database can (PostgreSQL).

    A plain CREATE INDEX holds every insert into the table for as long as the build
    takes. A concurrent build cannot run inside a transaction: the migration that
    uses this operation sets `atomic = False`.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._change(app_label, schema_editor, to_state, schema_editor.add_index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._change(app_label, schema_editor, from_state, schema_editor.remove_index)

    def _change(self, app_label, schema_editor, state, change) -> None:
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            change(model, self.index, concurrently=True)
        else:
            change(model, self.index)
