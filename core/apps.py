from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        # django_dramatiq's "Tasks" admin page is filled by its AdminMiddleware,
        # which is left out (core.settings: SQL on every enqueue), so it would
        # always be empty. Delivery state is in the outbox rows. The admin has
        # imported every admin module by now (its ready() runs first).
        from django.contrib import admin
        from django_dramatiq.models import Task

        if admin.site.is_registered(Task):
            admin.site.unregister(Task)
