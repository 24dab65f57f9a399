"""Admin site polish: the product's name on every admin page."""

from django.contrib import admin

admin.site.site_header = "Payshift signup"
admin.site.site_title = "Payshift signup admin"
admin.site.index_title = "Accounts and delivery"
