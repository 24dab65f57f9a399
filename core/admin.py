"""Admin site polish: the product's name, and no page that cannot work here."""

from django.contrib import admin
from django_dramatiq.models import Task

admin.site.site_header = "Payshift signup"
admin.site.site_title = "Payshift signup admin"
admin.site.index_title = "Accounts and delivery"

# django_dramatiq's "Tasks" page is filled by its AdminMiddleware, which is
# left out (core.settings: it costs SQL on every enqueue): it would always be
# empty. Delivery state lives in the outbox rows.
if admin.site.is_registered(Task):
    admin.site.unregister(Task)
