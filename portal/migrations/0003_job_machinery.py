# The one job machinery: DeletionJob is a kind of Job. Jobs of other apps' kinds name
# their target by a plain id (target_id) instead of an experiment id; artifact_roots
# was never read.

from django.db import migrations, models


def experiment_ids_to_target_ids(apps, schema_editor):
    DeletionJob = apps.get_model("portal", "DeletionJob")
    for job in DeletionJob.objects.filter(experiment_id__isnull=False).only("experiment_id"):
        DeletionJob.objects.filter(pk=job.pk).update(target_id=str(job.experiment_id))


def target_ids_to_experiment_ids(apps, schema_editor):
    DeletionJob = apps.get_model("portal", "DeletionJob")
    for job in DeletionJob.objects.filter(kind="experiment").exclude(target_id=""):
        DeletionJob.objects.filter(pk=job.pk).update(experiment_id=int(job.target_id))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_deletion_jobs"),
    ]

    operations = [
        migrations.AddField(
            model_name="deletionjob",
            name="target_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(experiment_ids_to_target_ids, target_ids_to_experiment_ids),
        migrations.RemoveField(model_name="deletionjob", name="experiment_id"),
        migrations.RemoveField(model_name="deletionjob", name="artifact_roots"),
        migrations.AddField(
            model_name="deletionjob",
            name="log",
            field=models.TextField(blank=True),
        ),
        migrations.AlterField(
            model_name="deletionjob",
            name="kind",
            field=models.CharField(max_length=32),
        ),
        migrations.AddIndex(
            model_name="deletionjob",
            index=models.Index(fields=["kind", "target_id"], name="portal_dele_kind_856fa6_idx"),
        ),
    ]
