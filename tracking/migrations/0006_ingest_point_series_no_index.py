"""Drop the index Django gave tracking_metricpoint.series_id: the primary key
(series_id, step, timestamp, value, is_nan) starts with that column and serves every
read by series (history, sampling, counts, purge), so the second index only made each
logged point cost one more btree insert."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0005_evaluation_datasets"),
    ]

    operations = [
        migrations.AlterField(
            model_name="metricpoint",
            name="series",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="tracking.latestmetric",
            ),
        ),
    ]
