import django.db.models.deletion
from django.db import migrations, models


def keep_source_run_ids(apps, schema_editor):
    """Logged models made before kept their source run only as a link; keep its id."""
    LoggedModel = apps.get_model("tracking", "LoggedModel")
    for pk, run_uuid in LoggedModel.objects.filter(source_run__isnull=False).values_list(
        "pk", "source_run__run_uuid"
    ):
        LoggedModel.objects.filter(pk=pk).update(source_run_uuid=run_uuid)


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_run_tag_parent_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunModelInput",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("model_id", models.CharField(max_length=64)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="model_inputs",
                        to="tracking.run",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "model_id"), name="run_model_input_unique"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="loggedmodel",
            name="source_run_uuid",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(keep_source_run_ids, migrations.RunPython.noop, elidable=True),
    ]
