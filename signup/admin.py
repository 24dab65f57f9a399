"""Admin: users with their profile and wallet inline. Codes are not shown."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from signup.models import Profile, User, Wallet
from signup.services import user_accounts_ensure


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False


class WalletInline(admin.StackedInline):
    model = Wallet
    can_delete = False
    readonly_fields = ("balance", "currency")


class NormalizedEmailMixin:
    """Store the address as the API does (domain lower-cased): one form of it everywhere."""

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"])


class UserCreationForm(NormalizedEmailMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(NormalizedEmailMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    inlines = [ProfileInline, WalletInline]
    list_display = ("email", "is_verified", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_active", "is_superuser")
    search_fields = ("email",)
    ordering = ("-date_joined",)
    readonly_fields = ("date_joined", "last_login", "email_verified_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Status", {"fields": ("is_active", "email_verified_at", "date_joined", "last_login")}),
        ("Permissions", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(boolean=True, description="verified")
    def is_verified(self, obj: User) -> bool:
        return obj.is_verified

    def get_inline_instances(self, request, obj=None):
        return super().get_inline_instances(request, obj) if obj else []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            user_accounts_ensure(user=obj)
