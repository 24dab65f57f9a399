"""Wrong codes move from AddressLimit.failures to AddressCounter (kind
"code:<purpose>"), where failed logins are counted: one mechanism. Live
counts are carried over, so a deploy resets no one's count."""

from django.db import migrations
from django.utils import timezone


def carry_over(apps, schema_editor):
    AddressLimit = apps.get_model("signup", "AddressLimit")
    AddressCounter = apps.get_model("signup", "AddressCounter")
    now = timezone.now()
    AddressCounter.objects.bulk_create(
        [
            AddressCounter(
                key=row.email,
                kind=f"code:{row.purpose}",
                failures=row.failures,
                window_started_at=now,
            )
            for row in AddressLimit.objects.filter(failures__gt=0).iterator()
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("signup", "0005_pending_signup"),
    ]

    operations = [
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.RemoveField(model_name="addresslimit", name="failures"),
    ]
