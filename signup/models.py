"""Accounts: the user, its profile and wallet, verification codes, address limits."""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from signup.addresses import address_key


class UserManager(BaseUserManager):
    """Creates users with their profile and wallet (createsuperuser, shell, tests)."""

    use_in_migrations = True

    def get_by_email(self, email: str):
        return self.get(**self.email_lookup(email))

    @staticmethod
    def email_lookup(email: str) -> dict:
        """A lookup that uses the Lower(email) unique index on every backend.

        Both sides are lowered by the database, as the index is (see
        signup.addresses): Python's str.lower() differs from SQL LOWER().
        """
        return {"email_lower": address_key(email)}

    def get_by_natural_key(self, username: str):
        """Login by email, case-insensitively (the account's identity), with
        the user's authenticator joined: a right password then knows whether
        a second step follows without another query."""
        return self.select_related("totp").get(**self.email_lookup(username))

    def get_queryset(self):
        return super().get_queryset().alias(email_lower=Lower("email"))

    # The one service that creates a user (signup.flows.signup.user_create), bound
    # by SignupConfig.ready: the model layer imports nothing above it, and
    # createsuperuser, the shell and tests get what signup and the admin get.
    creator = None

    def create_user(self, email: str, password: str | None = None, **extra):
        if UserManager.creator is None:
            raise RuntimeError("signup is not ready: UserManager.creator is not bound")
        return UserManager.creator(email=email, password=password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified_at", timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Email is the login; unique case-insensitively at the database level."""

    email = models.EmailField(max_length=254)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["is_staff"], name="user_is_staff_idx"),
            # The expiry job's scan (signup.flows.expiry): only never-verified accounts.
            models.Index(
                fields=["date_joined"],
                condition=models.Q(email_verified_at__isnull=True),
                name="user_unverified_joined_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None


class Profile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    full_name = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.full_name or f"profile of user {self.user_id}"


class Wallet(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="wallet")
    balance = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="USD")

    def __str__(self) -> str:
        return f"{self.balance} {self.currency}"


class VerificationCode(models.Model):
    """A 6-digit code, stored only as its keyed hash (see signup.codes)."""

    class Purpose(models.TextChoices):
        VERIFY_EMAIL = "verify_email"
        LOGIN = "login"
        RESET = "reset"
        EMAIL_CHANGE = "email_change"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="codes")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "purpose", "-created_at"], name="code_user_latest_idx")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} code for user {self.user_id}"


class AddressLimit(models.Model):
    """The per-address limits of one code purpose's requests, for every address.

    Wrong codes are counted in AddressCounter (kind "code:<purpose>"), with
    failed logins: one mechanism for every failure count.

    Keyed by the canonical address (signup.addresses), computed by the
    database, and kept for unknown addresses too. One row per address and
    purpose, locked while it is read and updated: atomic across processes,
    independent of Redis. See signup.limits for what each column gates.
    """

    email = models.CharField(max_length=254)  # address_key(email): LOWER() in the database
    purpose = models.CharField(max_length=20, default="verify_email")
    recent = models.JSONField(default=list)  # every code request allowed: epoch s, newest last
    asks = models.JSONField(default=list)  # answered requests from outside (resend): epoch s

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email", "purpose"], name="address_limit_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} limits of {self.email}"


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key for POST /signup and the answer it got.

    Written in the same transaction as the signup's effects, so a retry sees
    either nothing (and does the work) or the finished answer. In the
    database, not Redis: a retry through a Redis outage must still be safe.
    Scoped to the canonical address: another address's key is another key.
    The password is kept only as the signup's own Argon2id hash, so a
    replay costs a slow hash to check, and nothing at rest is a fast hash.
    """

    scope = models.CharField(max_length=254, default="")  # address_key(email)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # keyed hash of the body minus the password
    password_hash = models.CharField(max_length=256, default="")  # Argon2id, as User.password
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique"),
        ]

    def __str__(self) -> str:
        return self.key


class PendingSignup(models.Model):
    """One signup of an address that its mailbox has not confirmed yet.

    The signup's client holds the token (only its SHA-256 is here); verify
    takes it back with the code, and the account gets this row's password
    and name: whoever signed the address up without reading its mail holds
    nothing that survives the owner's verification (pre-account hijacking,
    signup.flows.verification). Every row of the account dies then.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="pending_signups")
    token_hash = models.CharField(max_length=64, unique=True)
    password = models.CharField(max_length=256)  # Argon2id, as User.password
    full_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"pending signup #{self.pk} of user {self.user_id}"


class EmailChange(models.Model):
    """A signed-in user's pending move to a new address, until its code comes back.

    One per user (a new request replaces it). It dies when it expires, on a
    password change or reset, or when the new address gets an account
    meanwhile (the confirm finds the address taken): an attacker who once
    held the session cannot park an address for later.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="email_change")
    new_email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"email change of user {self.user_id}"


class AccessToken(models.Model):
    """An opaque bearer token; only its SHA-256 is stored.

    The token is 32 random bytes, so a plain hash is enough (nothing to
    brute-force) and one indexed equality lookup finds it.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # What the user sees in their sessions list (GET /me/sessions): a coarse
    # description of the client that logged in, and its address as seen
    # through the trusted proxies.
    client = models.CharField(max_length=100, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token #{self.pk} of user {self.user_id}"


class AddressCounter(models.Model):
    """Failures counted per canonical address (signup.addresses), known or not.

    kind "login": failed password logins in the current window; kind
    "code:<purpose>": wrong codes since the last code request. Kept for
    unknown addresses too, so a 429 says nothing about who has an account.
    """

    key = models.CharField(max_length=254)  # address_key(email), computed by the database
    kind = models.CharField(max_length=20)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "kind"], name="address_counter_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.failures}"


class TotpDevice(models.Model):
    """An authenticator app (TOTP, RFC 6238) of one user: pending until a code
    from it confirms it, then two-factor login is on (signup.flows.mfa).

    The secret is kept only encrypted (signup.authenticator: Fernet with
    MFA_ENCRYPTION_KEY). last_step is the time step of the last code used:
    a code of that step or an earlier one is refused, so each code works once,
    decided by one conditional UPDATE (two parallel uses: one wins).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp")
    secret = models.TextField()  # a Fernet token of the base32 secret, never the secret
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)  # None: enrolment pending
    last_step = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"authenticator of user {self.user_id}"

    @property
    def is_on(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """One of a user's single-use recovery codes, only as its keyed hash.

    A set of MFA_RECOVERY_CODES is made when two-factor login is turned on
    and when the user asks for a new set (the old set is deleted); using one
    is one conditional UPDATE (two parallel uses: one wins).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="recovery_code_once"),
        ]

    def __str__(self) -> str:
        return f"recovery code #{self.pk} of user {self.user_id}"


class MfaChallenge(models.Model):
    """The second step of a login whose first factor was right, on an account
    with two-factor login on: the client holds the mfa_token (only its
    SHA-256 is here) and trades it, with a second factor, for an access
    token. Short-lived (MFA_TOKEN_TTL_SECONDS), single use, bound to the user.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mfa_challenges")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"mfa challenge #{self.pk} of user {self.user_id}"
