"""The test-only "selftest" job kind leaves production code; its rows (wiring checks with no
product meaning, never shown in the dashboard) go with it."""
from django.db import migrations, models


def delete_selftest_jobs(apps, schema_editor):
    apps.get_model("campaigns", "Job").objects.filter(kind="selftest").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0010_recipients'),
    ]

    operations = [
        migrations.RunPython(delete_selftest_jobs, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='job',
            name='kind',
            field=models.CharField(choices=[('train_lora', 'LoRA training'), ('generate_clips', 'Clip generation'), ('segment_profiles', 'Segmentation'), ('edit_clip', 'Clip edit'), ('rescene_campaign', 'Re-scene per segment'), ('import_recipients', 'Recipients import')], max_length=32),
        ),
    ]
