from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0003_personalization_and_edits"),
    ]

    operations = [
        migrations.AddField(
            model_name="clip",
            name="plan",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
