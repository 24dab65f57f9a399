"""The second factor's mechanisms (issue 21): TOTP against RFC 6238's test
vectors and a shifted clock, the secret at rest (Fernet, rotatable keys,
manage.py mfa_rotate_key, checks signup.E001/W001) and recovery codes."""

import base64
import re
from io import StringIO

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.management import CommandError, call_command

from signup import authenticator
from signup.authenticator import (
    RECOVERY_ALPHABET,
    SecretUnreadableError,
    recovery_code_hash,
    recovery_code_new,
    recovery_code_normalize,
    secret_decrypt,
    secret_encrypt,
    totp_match,
    totp_secret_new,
)
from signup.checks import check_mfa_key_set, check_mfa_keys
from signup.models import TotpDevice
from signup.tests.accounts_helpers import verified_user
from signup.tests.mfa_helpers import totp_enable

# RFC 6238, Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


# --- TOTP (RFC 6238) ----------------------------------------------------------------


@pytest.mark.parametrize(("at", "code"), RFC_VECTORS)
def test_rfc_6238_sha1_vectors_match_their_step(at, code):
    assert totp_match(RFC_SECRET, code, at=at, digits=8) == at // 30


@pytest.mark.parametrize(("at", "code"), RFC_VECTORS)
def test_the_six_digit_code_is_the_vectors_last_six(at, code):
    assert totp_match(RFC_SECRET, code[-6:], at=at) == at // 30
    assert totp_match(RFC_SECRET, code[-6:], at=at, digits=8) is None  # the wrong length


@pytest.mark.parametrize(("at", "code"), RFC_VECTORS)
def test_a_vector_is_refused_two_steps_away(at, code):
    assert totp_match(RFC_SECRET, code, at=at + 60, digits=8) is None
    if at >= 60:  # a step before 0 is no time a clock shows
        assert totp_match(RFC_SECRET, code, at=at - 60, digits=8) is None


def test_a_code_of_the_step_before_or_after_is_taken_two_steps_off_refused():
    secret = totp_secret_new()
    now = 1_700_000_015.0  # 15 s into step 56666667
    step = int(now // 30)
    totp = pyotp.TOTP(secret)

    def code(shift: int) -> str:
        return totp.generate_otp(step + shift)

    assert totp_match(secret, code(0), at=now) == step
    assert totp_match(secret, code(-1), at=now) == step - 1
    assert totp_match(secret, code(1), at=now) == step + 1
    assert totp_match(secret, code(-2), at=now) is None
    assert totp_match(secret, code(2), at=now) is None


def test_totp_match_reads_the_modules_clock_when_no_time_is_given(monkeypatch):
    """A shifted clock (time.time in signup.authenticator) moves which codes are taken."""
    secret = totp_secret_new()
    totp = pyotp.TOTP(secret)

    class Shifted:
        now = 2_000_000_000.0

        def time(self):
            return self.now

    clock = Shifted()
    monkeypatch.setattr("signup.authenticator.time", clock)
    step = int(clock.now // 30)
    code = totp.generate_otp(step)

    assert totp_match(secret, code) == step
    clock.now += 30
    assert totp_match(secret, code) == step  # the previous step: drift
    clock.now += 30
    assert totp_match(secret, code) is None  # two steps later
    clock.now -= 120
    assert totp_match(secret, code) is None  # two steps earlier


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦", "123 45", "-12345"]
)
def test_a_code_not_of_six_ascii_digits_is_refused(code):
    assert totp_match(totp_secret_new(), code, at=0) is None


def test_the_drift_setting_widens_the_window(settings):
    settings.MFA_TOTP_DRIFT_STEPS = 2
    secret = totp_secret_new()
    now = 1_700_000_015.0
    code = pyotp.TOTP(secret).generate_otp(int(now // 30) - 2)

    assert totp_match(secret, code, at=now) == int(now // 30) - 2


def test_a_new_secret_is_160_bits_of_base32():
    secret = totp_secret_new()
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp_secret_new()


# --- the secret at rest -------------------------------------------------------------


@pytest.mark.django_db
def test_the_stored_secret_is_encrypted_and_decrypts():
    user = verified_user()
    secret, _ = totp_enable(user)

    stored = TotpDevice.objects.get(user=user).secret

    assert secret not in stored
    assert secret.lower() not in stored.lower()
    assert secret_decrypt(stored) == secret
    assert secret_encrypt(secret) != secret_encrypt(secret)  # a fresh IV each time


def test_a_secret_of_another_key_is_unreadable(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MFA_ENCRYPTION_KEYS = [old]
    stored = secret_encrypt("JBSWY3DPEHPK3PXP")

    settings.MFA_ENCRYPTION_KEYS = [new]
    with pytest.raises(SecretUnreadableError):
        secret_decrypt(stored)

    settings.MFA_ENCRYPTION_KEYS = [new, old]  # the old one after the first: readable
    assert secret_decrypt(stored) == "JBSWY3DPEHPK3PXP"


def test_without_a_key_one_is_derived_from_secret_key(settings):
    settings.MFA_ENCRYPTION_KEYS = []
    stored = secret_encrypt("JBSWY3DPEHPK3PXP")
    assert secret_decrypt(stored) == "JBSWY3DPEHPK3PXP"

    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    with pytest.raises(SecretUnreadableError):
        secret_decrypt(stored)


@pytest.mark.django_db
def test_mfa_rotate_key_re_encrypts_every_secret_with_the_first_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MFA_ENCRYPTION_KEYS = [old]
    secrets_ = {totp_enable(verified_user(f"user{i}@example.com"))[0]: i for i in range(3)}
    settings.MFA_ENCRYPTION_KEYS = [new, old]
    before = dict(TotpDevice.objects.values_list("pk", "secret"))
    out = StringIO()

    call_command("mfa_rotate_key", stdout=out)

    assert "re-encrypted 3 TOTP secret(s)" in out.getvalue()
    settings.MFA_ENCRYPTION_KEYS = [new]  # the old key dropped
    after = dict(TotpDevice.objects.values_list("pk", "secret"))
    assert all(after[pk] != before[pk] for pk in before)
    assert {secret_decrypt(stored) for stored in after.values()} == set(secrets_)
    assert all(Fernet(new.encode()).decrypt(s.encode()) for s in after.values())


@pytest.mark.django_db
def test_mfa_rotate_key_fails_for_a_secret_no_key_reads_and_keeps_it(settings):
    lost, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MFA_ENCRYPTION_KEYS = [lost]
    totp_enable(verified_user())
    stored = TotpDevice.objects.get().secret
    settings.MFA_ENCRYPTION_KEYS = [new]

    with pytest.raises(CommandError, match="1 secret"):
        call_command("mfa_rotate_key", stdout=StringIO())

    assert TotpDevice.objects.get().secret == stored


# --- checks signup.E001 and signup.W001 ---------------------------------------------


def test_e001_for_a_key_that_is_not_a_fernet_key(settings):
    settings.MFA_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "not-a-key", "c2hvcnQ="]

    problems = check_mfa_keys()

    assert [(p.id, p.level) for p in problems] == [("signup.E001", checks.ERROR)] * 2
    assert "#2" in problems[0].msg
    assert "#3" in problems[1].msg


def test_no_e001_for_good_keys_or_none(settings):
    settings.MFA_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    assert check_mfa_keys() == []
    settings.MFA_ENCRYPTION_KEYS = []
    assert check_mfa_keys() == []


def test_w001_when_no_key_is_set_and_only_then(settings):
    settings.MFA_ENCRYPTION_KEYS = []
    (warning,) = check_mfa_key_set()
    assert (warning.id, warning.level) == ("signup.W001", checks.WARNING)

    settings.MFA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert check_mfa_key_set() == []


def test_the_checks_are_registered_w001_for_deploy_only():
    plain = checks.registry.registry.get_checks(include_deployment_checks=False)
    deploy = checks.registry.registry.get_checks(include_deployment_checks=True)

    assert check_mfa_keys in plain
    assert check_mfa_key_set not in plain
    assert check_mfa_key_set in deploy


# --- recovery codes -----------------------------------------------------------------


def test_a_recovery_code_is_three_groups_of_four_without_look_alikes():
    codes = {recovery_code_new() for _ in range(200)}

    assert len(codes) == 200
    pattern = re.compile(rf"^[{RECOVERY_ALPHABET}]{{4}}(-[{RECOVERY_ALPHABET}]{{4}}){{2}}$")
    assert all(pattern.match(code) for code in codes)
    assert not set(RECOVERY_ALPHABET) & set("0o1li")


@pytest.mark.parametrize(
    "typed", ["abcd-efgh-jkmn", "ABCD-EFGH-JKMN", "abcdefghjkmn", "AbCd EfGh JkMn", "abcd-efghjkmn"]
)
def test_a_recovery_code_is_read_in_any_case_with_or_without_dashes(typed):
    assert recovery_code_normalize(typed) == "abcdefghjkmn"
    assert recovery_code_hash(typed, user_id=7) == recovery_code_hash("abcd-efgh-jkmn", user_id=7)


def test_a_recovery_codes_hash_is_keyed_and_bound_to_the_user():
    code = recovery_code_new()

    digest = recovery_code_hash(code, user_id=1)

    assert digest != recovery_code_hash(code, user_id=2)
    assert recovery_code_normalize(code) not in digest
    assert len(digest) == 64


def test_looks_like_totp_tells_a_totp_code_from_a_recovery_code():
    assert authenticator.looks_like_totp("123456")
    assert authenticator.looks_like_totp(" 123456 ")
    assert not authenticator.looks_like_totp("abcd-efgh-jkmn")
    assert not authenticator.looks_like_totp("1234567")


@pytest.mark.django_db
def test_setting_a_key_after_running_without_one_can_be_rotated_to(settings):
    """W001's advice on a running deployment: set MFA_ENCRYPTION_KEY, run
    mfa_rotate_key. The secrets written under the key derived from SECRET_KEY
    must stay readable and move to the new key (else every authenticator
    stops working and the command cannot help)."""
    settings.MFA_ENCRYPTION_KEYS = []
    secret, _ = totp_enable(verified_user())
    settings.MFA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    assert secret_decrypt(TotpDevice.objects.get().secret) == secret
    call_command("mfa_rotate_key", stdout=StringIO())
    assert secret_decrypt(TotpDevice.objects.get().secret) == secret
