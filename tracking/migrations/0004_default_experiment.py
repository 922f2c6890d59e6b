import time

from django.db import migrations, models


def default_experiments(apps, schema_editor):
    """Every workspace has its "Default" experiment (MLflow's id 0) from the start, as
    `mlflow server` has experiment 0. Before, it was made on first use and found by name:
    a workspace that has one by that name keeps it as its default."""
    Workspace = apps.get_model("portal", "Workspace")
    Experiment = apps.get_model("tracking", "Experiment")
    have_one = Experiment.objects.filter(is_default=True).values("workspace_id")
    for workspace in Workspace.objects.filter(deletion_requested_at__isnull=True).exclude(
        pk__in=have_one
    ):
        named = Experiment.objects.filter(workspace=workspace, name="Default").first()
        if named is not None:
            named.is_default = True
            named.save(update_fields=["is_default"])
            continue
        now = int(time.time() * 1000)
        experiment = Experiment.objects.create(
            workspace=workspace,
            name="Default",
            artifact_location="pending",
            creation_time=now,
            last_update_time=now,
            is_default=True,
        )
        experiment.artifact_location = f"mlflow-artifacts:/{experiment.pk}"
        experiment.save(update_fields=["artifact_location"])


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_job_machinery"),
        ("tracking", "0003_run_model_inputs"),
    ]

    operations = [
        migrations.AddField(
            model_name="experiment",
            name="is_default",
            field=models.BooleanField(default=False),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_default", True)),
                fields=("workspace",),
                name="experiment_default_unique",
            ),
        ),
        migrations.RunPython(default_experiments, migrations.RunPython.noop, elidable=True),
    ]
