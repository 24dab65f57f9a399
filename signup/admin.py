"""Admin: users with profile and wallet inline, their tokens listed; no code or token secret.

Users are created through signup.flows.signup.user_create (the one way), and
deactivated or reactivated through the status-change actions, never by
ticking is_active: the action revokes tokens and tells the user and admins.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.errors import ApiError
from signup.flows.closing import user_close
from signup.flows.mfa import mfa_reset_by_staff, mfa_status
from signup.flows.signup import user_create
from signup.flows.status import user_deactivate, user_reactivate
from signup.models import AccessToken, EmailChange, Profile, User, Wallet


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False


class WalletInline(admin.StackedInline):
    model = Wallet
    can_delete = False
    readonly_fields = ("balance", "currency")


class ReadOnlyInline(admin.TabularInline):
    """Shown to staff, never edited here: the user's own flows change these."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SessionInline(ReadOnlyInline):
    """The user's tokens as GET /me/sessions lists them (never a token or its hash)."""

    model = AccessToken
    verbose_name, verbose_name_plural = "session", "sessions"
    fields = readonly_fields = (
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "client",
        "ip",
    )
    ordering = ("-created_at",)


class EmailChangeInline(ReadOnlyInline):
    model = EmailChange
    verbose_name, verbose_name_plural = "pending email change", "pending email change"
    fields = readonly_fields = ("new_email", "created_at", "expires_at")


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


class VerifiedFilter(admin.SimpleListFilter):
    title = "verified"
    parameter_name = "verified"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(email_verified_at__isnull=self.value() == "no")
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    inlines = [ProfileInline, WalletInline, EmailChangeInline, SessionInline]
    list_display = ("email", "is_verified", "is_staff", "is_active", "date_joined")
    list_filter = (VerifiedFilter, "is_active", "is_staff", "is_superuser")
    search_fields = ("email",)
    ordering = ("-date_joined",)
    readonly_fields = (
        "date_joined",
        "last_login",
        "email_verified_at",
        "is_active",
        "access_tokens",
        "messages",
        "two_factor",
    )
    actions = ["deactivate", "reactivate", "close_account", "reset_two_factor"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Status", {"fields": ("is_active", "email_verified_at", "date_joined", "last_login")}),
        ("Permissions", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Access tokens", {"fields": ("access_tokens",)}),
        ("Two-factor login", {"fields": ("two_factor",)}),
        ("Email and notifications", {"fields": ("messages",)}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(boolean=True, description="verified")
    def is_verified(self, obj: User) -> bool:
        return obj.is_verified

    @admin.display(description="access tokens (only their hashes are stored; never shown)")
    def access_tokens(self, obj: User) -> str:
        """Newest 50 tokens: when made, last used, expiring, revoked."""
        rows = obj.tokens.order_by("-created_at").values_list(
            "pk", "created_at", "last_used_at", "expires_at", "revoked_at"
        )[:50]
        if not rows:
            return "none"
        header = mark_safe(  # a constant, no data in it
            "<tr><th>#</th><th>created</th><th>last used</th><th>expires</th><th>revoked</th></tr>"
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((pk, c, u or "-", e, r or "-") for pk, c, u, e, r in rows),
        )
        return format_html("<table>{}{}</table>", header, body)

    @admin.display(description="rows")
    def messages(self, obj: User) -> str:
        """Links to the user's outbox rows (their emails and jobs) and notifications."""
        links = (
            (reverse(f"admin:messaging_{model}_changelist"), obj.pk, label)
            for model, label in (("outbox", "outbox rows"), ("notification", "notifications"))
        )
        return format_html_join(" · ", '<a href="{}?user__id__exact={}">{}</a>', links)

    @admin.display(description="two-factor login (the secret and codes are never shown)")
    def two_factor(self, obj: User) -> str:
        found = mfa_status(user=obj)
        if not found.totp:
            return "off"
        return f"on (authenticator app); {found.recovery_codes_left} recovery code(s) left"

    def get_inline_instances(self, request, obj=None):
        return super().get_inline_instances(request, obj) if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # The form hashed the password; the one creation service does the rest.
        created = user_create(
            email=obj.email,
            password_hash=obj.password,
            is_staff=obj.is_staff,
            is_superuser=obj.is_superuser,
        )
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db

    def _change_status(self, request, queryset, change, verb: str) -> None:
        changed = sum(1 for user in queryset if change(user=user))
        self.message_user(
            request,
            f"{changed} account(s) {verb}; {queryset.count() - changed} already were.",
            messages.SUCCESS,
        )

    @admin.action(description="Deactivate (revoke tokens, notify the user and admins)")
    def deactivate(self, request, queryset):
        self._change_status(request, queryset, user_deactivate, "deactivated")

    @admin.action(description="Reactivate (notify the user and admins)")
    def reactivate(self, request, queryset):
        self._change_status(request, queryset, user_reactivate, "reactivated")

    @admin.action(description="Close account (as DELETE /api/v1/me; the wallet must be empty)")
    def close_account(self, request, queryset):
        """The owner's closing without re-authentication (staff act); an account
        whose wallet is not empty is left as it is and named."""
        closed, already, refused = 0, 0, []
        for user in queryset:
            email = user.email
            try:
                if user_close(user=user, by_staff=True):
                    closed += 1
                else:
                    already += 1
            except ApiError as exc:
                if exc.code != "wallet_not_empty":
                    raise
                refused.append(email)
        self.message_user(
            request, f"{closed} account(s) closed; {already} already were.", messages.SUCCESS
        )
        if refused:
            self.message_user(
                request,
                "Not closed, the wallet is not empty (withdraw or transfer the balance "
                f"first): {', '.join(refused)}.",
                messages.WARNING,
            )

    @admin.action(
        description="Reset two-factor login (lost app and recovery codes; notifies the user)"
    )
    def reset_two_factor(self, request, queryset):
        """For a user who proved who they are to support some other way: the
        app and recovery codes are deleted; an email tells the user."""
        reset = sum(1 for user in queryset if mfa_reset_by_staff(user=user))
        self.message_user(
            request,
            f"Two-factor login reset for {reset} account(s); "
            f"{queryset.count() - reset} had it off.",
            messages.SUCCESS,
        )
