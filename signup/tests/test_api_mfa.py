"""Two-factor login with TOTP (issue 21), at the API: /me/mfa (status,
enrolment, confirmation, turning it off, new recovery codes), the login's
second step (/auth/mfa) after a password, a login code or a password reset,
re-authentication's mfa_code, the account's count of wrong second factors
(429), the notices and the admin's reset. Every answer and status code."""

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from signup import messages
from signup.authenticator import secret_decrypt, secret_encrypt, totp_secret_new
from signup.flows.mfa_login import CHALLENGE_GONE, MFA, mfa_challenges_purge
from signup.flows.reauth import MFA_CODE_MISSING
from signup.models import (
    AccessToken,
    AddressCounter,
    MfaChallenge,
    RecoveryCode,
    TotpDevice,
    User,
)
from signup.tests.accounts_helpers import (
    CODE_VERIFY,
    EMAIL,
    ME,
    NEW_PASSWORD,
    PASSWORD,
    RESET_CONFIRM,
    Purpose,
    bearer,
    code_for,
    token_for,
    verified_user,
    wrong,
)
from signup.tests.mfa_helpers import (
    AUTH_MFA,
    CONFIRM,
    MFA_STATUS,
    RECOVERY,
    TOTP,
    TotpClock,
    login,
    mfa_token_for,
    outbox_rows,
    second_step,
    send,
    totp_clock_freeze,
    totp_enable,
)
from signup.tokens import token_digest

pytestmark = pytest.mark.django_db

RECOVERY_SHAPE = r"^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$"


@dataclass
class Account:
    user: User
    raw: str  # an access token
    secret: str = ""  # base32, when TOTP is on
    recovery: tuple[str, ...] = ()


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> TotpClock:
    return totp_clock_freeze(monkeypatch)


@pytest.fixture
def ada() -> Account:
    """Two-factor login on."""
    user = verified_user()
    secret, codes = totp_enable(user)
    return Account(user=user, raw=token_for(user), secret=secret, recovery=tuple(codes))


@pytest.fixture
def off() -> Account:
    """Two-factor login off."""
    user = verified_user("grace@example.com")
    return Account(user=user, raw=token_for(user))


def status_of(api, account: Account) -> dict:
    response = api.get(MFA_STATUS, **bearer(account.raw))
    assert response.status_code == 200, response.content
    return response.json()


def enrol(api, account: Account, body=None):
    return send(api, "POST", TOTP, body or {"password": PASSWORD}, account.raw)


def mfa_failures(user: User) -> int:
    row = AddressCounter.objects.filter(key=f"user:{user.pk}", kind=MFA).first()
    return row.failures if row else 0


# --- status and 401 -----------------------------------------------------------------


def test_status_is_off_for_a_new_account_and_on_with_ten_codes(api, ada, off):
    assert status_of(api, off) == {"totp": False, "recovery_codes_left": 0}
    assert status_of(api, ada) == {"totp": True, "recovery_codes_left": 10}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", MFA_STATUS), ("POST", TOTP), ("POST", CONFIRM), ("DELETE", TOTP), ("POST", RECOVERY)],
)
def test_every_me_mfa_endpoint_needs_a_token(api, ada, method, path):
    response = send(api, method, path, {"password": PASSWORD, "code": "123456"})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert TotpDevice.objects.get(user=ada.user).is_on


# --- enrolment ------------------------------------------------------------------------


def test_enrol_answers_the_secret_a_uri_and_a_qr_code_and_turns_nothing_on(api, off):
    response = enrol(api, off)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    uri = urlparse(body["otpauth_uri"])
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/Payshift:grace@example.com"
    assert query["secret"] == [body["secret"]]
    assert query["issuer"] == ["Payshift"]
    assert body["qr_svg"].startswith("data:image/svg+xml")
    assert "<svg" in unquote(body["qr_svg"])
    device = TotpDevice.objects.get(user=off.user)
    assert not device.is_on
    assert body["secret"] not in device.secret
    assert secret_decrypt(device.secret) == body["secret"]
    assert status_of(api, off) == {"totp": False, "recovery_codes_left": 0}
    assert "access_token" in login(api, off.user.email).json()  # nothing on until confirmed


def test_enrol_re_authenticates_with_a_login_code_too(api, off):
    response = enrol(api, off, {"code": code_for(off.user, Purpose.LOGIN)})

    assert response.status_code == 200, response.content
    assert TotpDevice.objects.filter(user=off.user, confirmed_at__isnull=True).exists()


def test_enrol_with_a_wrong_password_is_400_and_makes_nothing(api, off):
    response = enrol(api, off, {"password": "wrong password!"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    assert not TotpDevice.objects.exists()


@pytest.mark.parametrize("body", [{}, {"mfa_code": "123456"}, {"password": ""}])
def test_enrol_without_a_proof_is_422(api, off, body):
    response = send(api, "POST", TOTP, body, off.raw)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert not TotpDevice.objects.exists()


def test_enrol_with_two_factor_on_is_409_and_keeps_the_secret(api, ada):
    stored = TotpDevice.objects.get(user=ada.user).secret

    response = enrol(api, ada)

    assert response.status_code == 409
    assert response.json()["code"] == "mfa_already_enabled"
    assert TotpDevice.objects.get(user=ada.user).secret == stored


def test_a_second_enrolment_replaces_the_pending_secret(api, off, clock):
    first = enrol(api, off).json()["secret"]
    second = enrol(api, off).json()["secret"]

    assert first != second
    assert TotpDevice.objects.filter(user=off.user).count() == 1
    refused = send(api, "POST", CONFIRM, {"code": clock.code(first)}, off.raw)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_code")
    assert send(api, "POST", CONFIRM, {"code": clock.code(second)}, off.raw).status_code == 200


# --- confirmation -----------------------------------------------------------------------


def test_confirm_turns_it_on_answers_ten_recovery_codes_and_tells_the_user(api, off, clock):
    secret = enrol(api, off).json()["secret"]

    response = send(api, "POST", CONFIRM, {"code": clock.code(secret)}, off.raw)

    assert response.status_code == 200, response.content
    codes = response.json()["recovery_codes"]
    assert set(response.json()) == {"recovery_codes"}
    assert len(codes) == len(set(codes)) == 10
    assert all(re.match(RECOVERY_SHAPE, code) for code in codes)
    stored = set(RecoveryCode.objects.filter(user=off.user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert not stored & set(codes)  # only hashes kept
    assert status_of(api, off) == {"totp": True, "recovery_codes_left": 10}
    (notice,) = outbox_rows(off.user, messages.MFA_ENABLED_EMAIL)
    assert secret not in str(notice.context)
    assert login(api, off.user.email).json()["mfa_required"] is True


def test_the_confirming_code_cannot_log_in_afterwards(api, off, clock):
    """The confirmation uses the code's step up: the same code is a replay."""
    secret = enrol(api, off).json()["secret"]
    assert send(api, "POST", CONFIRM, {"code": clock.code(secret)}, off.raw).status_code == 200

    response = second_step(api, mfa_token_for(api, off.user.email), code=clock.code(secret))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_code")


def test_confirm_with_a_wrong_code_is_400_and_leaves_it_off(api, off, clock):
    secret = enrol(api, off).json()["secret"]

    response = send(api, "POST", CONFIRM, {"code": wrong(clock.code(secret))}, off.raw)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_code"
    assert status_of(api, off)["totp"] is False
    assert not RecoveryCode.objects.exists()
    assert not outbox_rows(off.user, messages.MFA_ENABLED_EMAIL)


def test_confirm_with_nothing_being_set_up_is_400(api, off):
    response = send(api, "POST", CONFIRM, {"code": "123456"}, off.raw)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_code")


def test_confirm_with_two_factor_on_is_409(api, ada, clock):
    response = send(api, "POST", CONFIRM, {"code": clock.code(ada.secret)}, ada.raw)

    assert (response.status_code, response.json()["code"]) == (409, "mfa_already_enabled")
    assert RecoveryCode.objects.filter(user=ada.user, used_at__isnull=True).count() == 10


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "1" * 33}, {"code": None}])
def test_confirm_without_a_code_is_422(api, off, body):
    response = send(api, "POST", CONFIRM, body, off.raw)

    assert (response.status_code, response.json()["code"]) == (422, "validation_error")


# --- turning it off ---------------------------------------------------------------------


def test_disable_with_the_password_and_a_totp_code_turns_it_off_and_tells_the_user(api, ada, clock):
    body = {"password": PASSWORD, "mfa_code": clock.code(ada.secret)}

    response = send(api, "DELETE", TOTP, body, ada.raw)

    assert response.status_code == 204, response.content
    assert not TotpDevice.objects.filter(user=ada.user).exists()
    assert not RecoveryCode.objects.filter(user=ada.user).exists()
    assert status_of(api, ada) == {"totp": False, "recovery_codes_left": 0}
    (notice,) = outbox_rows(ada.user, messages.MFA_DISABLED_EMAIL)
    assert notice.context["by"] == "user"
    assert "access_token" in login(api, EMAIL).json()


def test_disable_takes_a_recovery_code_as_mfa_code(api, ada):
    body = {"password": PASSWORD, "mfa_code": ada.recovery[0].upper()}

    assert send(api, "DELETE", TOTP, body, ada.raw).status_code == 204
    assert status_of(api, ada)["totp"] is False


@pytest.mark.parametrize("mfa_code", [None, "wrong", "recovery-wrong"])
def test_disable_without_a_right_mfa_code_is_400_and_leaves_it_on(api, ada, clock, mfa_code):
    """Missing, a wrong TOTP code, or a wrong recovery code: invalid_credentials."""
    body: dict = {"password": PASSWORD}
    if mfa_code == "wrong":
        body["mfa_code"] = wrong(clock.code(ada.secret))
    elif mfa_code:
        body["mfa_code"] = "abcd-efgh-jkmn"

    response = send(api, "DELETE", TOTP, body, ada.raw)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    if mfa_code is None:
        assert response.json()["detail"] == MFA_CODE_MISSING
    assert status_of(api, ada) == {"totp": True, "recovery_codes_left": 10}
    assert not outbox_rows(ada.user, messages.MFA_DISABLED_EMAIL)


def test_a_wrong_password_does_not_use_up_the_mfa_code(api, ada, clock):
    code = clock.code(ada.secret)

    refused = send(api, "DELETE", TOTP, {"password": "wrong password!", "mfa_code": code}, ada.raw)
    done = send(api, "DELETE", TOTP, {"password": PASSWORD, "mfa_code": code}, ada.raw)

    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_credentials")
    assert done.status_code == 204


def test_disable_when_off_is_204_and_tells_no_one(api, off):
    assert send(api, "DELETE", TOTP, {"password": PASSWORD}, off.raw).status_code == 204
    assert not outbox_rows(off.user, messages.MFA_DISABLED_EMAIL)


# --- new recovery codes -----------------------------------------------------------------


def test_new_recovery_codes_replace_the_old_set(api, ada, clock):
    body = {"password": PASSWORD, "mfa_code": clock.code(ada.secret)}

    response = send(api, "POST", RECOVERY, body, ada.raw)

    assert response.status_code == 200, response.content
    fresh = response.json()["recovery_codes"]
    assert len(fresh) == len(set(fresh)) == 10
    assert not set(fresh) & set(ada.recovery)
    assert len(outbox_rows(ada.user, messages.MFA_RECOVERY_NEW_EMAIL)) == 1
    assert status_of(api, ada) == {"totp": True, "recovery_codes_left": 10}
    old = second_step(api, mfa_token_for(api, EMAIL), recovery_code=ada.recovery[1])
    assert (old.status_code, old.json()["code"]) == (400, "invalid_code")
    assert second_step(api, mfa_token_for(api, EMAIL), recovery_code=fresh[0]).status_code == 200


def test_new_recovery_codes_with_two_factor_off_is_409(api, off):
    response = send(api, "POST", RECOVERY, {"password": PASSWORD}, off.raw)

    assert (response.status_code, response.json()["code"]) == (409, "mfa_not_enabled")
    assert not RecoveryCode.objects.exists()


def test_new_recovery_codes_without_mfa_code_is_400(api, ada):
    response = send(api, "POST", RECOVERY, {"password": PASSWORD}, ada.raw)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")
    assert not outbox_rows(ada.user, messages.MFA_RECOVERY_NEW_EMAIL)


# --- the first step: mfa_required -------------------------------------------------------


def test_a_right_password_answers_mfa_required_and_no_token(api, ada):
    response = login(api, EMAIL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"mfa_required", "mfa_token"}
    assert body["mfa_required"] is True
    assert AccessToken.objects.filter(user=ada.user).count() == 1  # the fixture's only
    (challenge,) = MfaChallenge.objects.filter(user=ada.user)
    assert challenge.token_hash != body["mfa_token"]
    assert challenge.token_hash == token_digest(body["mfa_token"])


def test_a_wrong_password_on_an_account_with_totp_is_a_plain_400(api, ada):
    response = login(api, EMAIL, "wrong password!")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")
    assert not MfaChallenge.objects.exists()


def test_a_login_code_answers_mfa_required_then_the_second_step_logs_in(api, ada, clock):
    response = api.post_json(CODE_VERIFY, {"email": EMAIL, "code": code_for(ada.user, "login")})

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"mfa_required", "mfa_token"}
    done = second_step(api, response.json()["mfa_token"], code=clock.code(ada.secret))
    assert done.status_code == 200
    assert api.get(ME, **bearer(done.json()["access_token"])).status_code == 200


def test_a_password_reset_does_not_bypass_the_second_factor(api, ada, clock):
    body = {"email": EMAIL, "code": code_for(ada.user, Purpose.RESET), "password": NEW_PASSWORD}

    response = api.post_json(RESET_CONFIRM, body)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"mfa_required", "mfa_token"}
    assert api.get(ME, **bearer(ada.raw)).status_code == 401  # older tokens died
    assert TotpDevice.objects.get(user=ada.user).is_on  # the reset leaves it on
    assert login(api, EMAIL, NEW_PASSWORD).json()["mfa_required"] is True
    done = second_step(api, response.json()["mfa_token"], code=clock.code(ada.secret))
    assert done.status_code == 200


@pytest.mark.parametrize("pending", [False, True], ids=["never", "pending-enrolment"])
@pytest.mark.parametrize("how", ["password", "code", "reset"])
def test_an_account_without_totp_still_gets_the_token_body(api, off, how, pending):
    if pending:
        TotpDevice.objects.create(user=off.user, secret=secret_encrypt(totp_secret_new()))
    email = off.user.email
    if how == "password":
        response = login(api, email)
    elif how == "code":
        response = api.post_json(CODE_VERIFY, {"email": email, "code": code_for(off.user, "login")})
    else:
        code = code_for(off.user, Purpose.RESET)
        body = {"email": email, "code": code, "password": NEW_PASSWORD}
        response = api.post_json(RESET_CONFIRM, body)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access_token", "token_type", "expires_in"}
    assert not MfaChallenge.objects.exists()


# --- the second step: /auth/mfa ---------------------------------------------------------


def test_a_totp_code_completes_the_login_and_the_mfa_token_works_once(api, ada, clock):
    mfa_token = mfa_token_for(api, EMAIL)

    response = second_step(api, mfa_token, code=clock.code(ada.secret))

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access_token", "token_type", "expires_in"}
    assert api.get(ME, **bearer(response.json()["access_token"])).status_code == 200
    assert MfaChallenge.objects.get().used_at is not None
    again = second_step(api, mfa_token, code=clock.code(ada.secret, 1))  # a fresh code
    assert again.status_code == 400
    assert again.json() == {"detail": CHALLENGE_GONE, "code": "invalid_code"}


def test_a_code_works_once(api, ada, clock):
    code = clock.code(ada.secret)
    assert second_step(api, mfa_token_for(api, EMAIL), code=code).status_code == 200

    replay = second_step(api, mfa_token_for(api, EMAIL), code=code)

    assert (replay.status_code, replay.json()["code"]) == (400, "invalid_code")


def test_a_code_of_an_earlier_step_than_one_used_is_refused(api, ada, clock):
    """The next step's code (drift) was used: now's and the previous step's are replays."""
    assert (
        second_step(api, mfa_token_for(api, EMAIL), code=clock.code(ada.secret, 1)).status_code
        == 200
    )

    for steps in (0, -1):
        response = second_step(api, mfa_token_for(api, EMAIL), code=clock.code(ada.secret, steps))
        assert (response.status_code, response.json()["code"]) == (400, "invalid_code")
    clock.advance(60)  # two steps on: the next code is new
    assert (
        second_step(api, mfa_token_for(api, EMAIL), code=clock.code(ada.secret)).status_code == 200
    )


@pytest.mark.parametrize("steps", [-1, 1])
def test_a_code_of_the_step_before_or_after_is_taken(api, ada, clock, steps):
    response = second_step(api, mfa_token_for(api, EMAIL), code=clock.code(ada.secret, steps))

    assert response.status_code == 200
    assert TotpDevice.objects.get(user=ada.user).last_step == clock.step() + steps


@pytest.mark.parametrize("steps", [-2, 2])
def test_a_code_two_steps_off_is_refused(api, ada, clock, steps):
    response = second_step(api, mfa_token_for(api, EMAIL), code=clock.code(ada.secret, steps))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_code")


def test_a_code_used_at_login_cannot_re_authenticate(api, ada, clock):
    code = clock.code(ada.secret)
    assert second_step(api, mfa_token_for(api, EMAIL), code=code).status_code == 200

    response = send(api, "DELETE", TOTP, {"password": PASSWORD, "mfa_code": code}, ada.raw)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")


def test_a_wrong_code_does_not_end_the_login(api, ada, clock):
    mfa_token = mfa_token_for(api, EMAIL)

    typo = second_step(api, mfa_token, code=wrong(clock.code(ada.secret)))
    right = second_step(api, mfa_token, code=clock.code(ada.secret))

    assert typo.status_code == 400
    assert typo.json()["code"] == "invalid_code"
    assert typo.json()["detail"] != CHALLENGE_GONE
    assert right.status_code == 200


@pytest.mark.parametrize("how", ["expires_at", "ttl"])
def test_an_expired_mfa_token_is_400(api, ada, clock, settings, how):
    if how == "ttl":
        settings.MFA_TOKEN_TTL_SECONDS = 0
    mfa_token = mfa_token_for(api, EMAIL)
    if how == "expires_at":
        MfaChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = second_step(api, mfa_token, code=clock.code(ada.secret))

    assert response.json() == {"detail": CHALLENGE_GONE, "code": "invalid_code"}
    assert response.status_code == 400
    assert TotpDevice.objects.get(user=ada.user).last_step == 0  # the code was not used up


def test_an_mfa_token_almost_expired_still_works(api, ada, clock):
    mfa_token = mfa_token_for(api, EMAIL)
    MfaChallenge.objects.update(expires_at=timezone.now() + timedelta(seconds=5))

    assert second_step(api, mfa_token, code=clock.code(ada.secret)).status_code == 200


def test_an_unknown_mfa_token_is_400(api, ada, clock):
    response = second_step(api, "not-an-mfa-token", code=clock.code(ada.secret))

    assert response.json() == {"detail": CHALLENGE_GONE, "code": "invalid_code"}


def test_an_mfa_token_is_bound_to_its_account(api, ada, off, clock):
    """Ada's mfa_token with Grace's code or recovery code logs no one in."""
    grace_secret, grace_codes = totp_enable(off.user)
    mfa_token = mfa_token_for(api, EMAIL)

    by_code = second_step(api, mfa_token, code=clock.code(grace_secret))
    by_recovery = second_step(api, mfa_token, recovery_code=grace_codes[0])

    assert (by_code.status_code, by_code.json()["code"]) == (400, "invalid_code")
    assert (by_recovery.status_code, by_recovery.json()["code"]) == (400, "invalid_code")
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()
    assert TotpDevice.objects.get(user=off.user).last_step == 0
    assert AccessToken.objects.count() == 2  # the fixtures' only


def test_an_mfa_token_of_a_deactivated_account_is_400(api, ada, clock):
    mfa_token = mfa_token_for(api, EMAIL)
    User.objects.filter(pk=ada.user.pk).update(is_active=False)

    response = second_step(api, mfa_token, code=clock.code(ada.secret))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_code")


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"mfa_token": "t"}, "second_factor_missing"),
        ({"mfa_token": "t", "code": None, "recovery_code": None}, "second_factor_missing"),
        (
            {"mfa_token": "t", "code": "123456", "recovery_code": "abcd-efgh-jkmn"},
            "second_factor_missing",
        ),
        ({"code": "123456"}, "missing"),
        ({"mfa_token": "", "code": "123456"}, "string_too_short"),
        ({"mfa_token": "t", "code": ""}, "string_too_short"),
        ({"mfa_token": "t", "recovery_code": "a" * 65}, "string_too_long"),
    ],
)
def test_a_second_step_body_with_neither_or_both_factors_is_422(api, ada, body, error_type):
    response = api.post_json(AUTH_MFA, body)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"][0]["type"] == error_type
    assert mfa_failures(ada.user) == 0


# --- recovery codes at login ------------------------------------------------------------


@pytest.mark.parametrize(
    "spell",
    [str, str.upper, lambda c: c.replace("-", ""), lambda c: c.replace("-", "").upper()],
    ids=["as-shown", "upper", "no-dashes", "upper-no-dashes"],
)
def test_a_recovery_code_logs_in_once_and_the_user_is_told_how_many_are_left(api, ada, spell):
    code = ada.recovery[3]

    response = second_step(api, mfa_token_for(api, EMAIL), recovery_code=spell(code))

    assert response.status_code == 200, response.content
    assert api.get(ME, **bearer(response.json()["access_token"])).status_code == 200
    (notice,) = outbox_rows(ada.user, messages.MFA_RECOVERY_USED_EMAIL)
    assert notice.context["left"] == 9
    assert code not in str(notice.context)
    assert status_of(api, ada) == {"totp": True, "recovery_codes_left": 9}
    again = second_step(api, mfa_token_for(api, EMAIL), recovery_code=code)
    assert (again.status_code, again.json()["code"]) == (400, "invalid_code")


def test_each_recovery_code_used_tells_the_count_left(api, ada):
    for code in ada.recovery[:3]:
        assert second_step(api, mfa_token_for(api, EMAIL), recovery_code=code).status_code == 200

    rows = outbox_rows(ada.user, messages.MFA_RECOVERY_USED_EMAIL)
    assert [row.context["left"] for row in rows] == [9, 8, 7]
    assert status_of(api, ada)["recovery_codes_left"] == 7


def test_a_recovery_code_in_the_code_field_is_refused(api, ada):
    response = second_step(api, mfa_token_for(api, EMAIL), code=ada.recovery[0])

    assert (response.status_code, response.json()["code"]) == (400, "invalid_code")
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()


# --- the account's count of wrong second factors: 429 -----------------------------------


def assert_too_many(response, settings) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "too_many_attempts"
    assert 1 <= int(response["Retry-After"]) <= settings.MFA_FAILURE_WINDOW_SECONDS


def test_five_wrong_second_factors_then_429_even_for_a_right_one(api, ada, clock, settings):
    mfa_token = mfa_token_for(api, EMAIL)
    bad = wrong(clock.code(ada.secret))

    answers = [second_step(api, mfa_token, code=bad).status_code for _ in range(5)]
    limited = second_step(api, mfa_token, code=clock.code(ada.secret))
    by_recovery = second_step(api, mfa_token, recovery_code=ada.recovery[0])

    assert answers == [400] * 5
    assert_too_many(limited, settings)
    assert_too_many(by_recovery, settings)
    assert len(outbox_rows(ada.user, messages.MFA_FAILURES_EMAIL)) == 1  # at the 5th, once
    assert TotpDevice.objects.get(user=ada.user).last_step == 0  # not checked, not used
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()


def test_wrong_codes_count_alike_at_login_and_in_re_authentication(api, ada, clock, settings):
    """/auth/mfa, a wrong TOTP mfa_code and a wrong recovery mfa_code: one count."""
    bad = wrong(clock.code(ada.secret))
    mfa_token = mfa_token_for(api, EMAIL)
    assert second_step(api, mfa_token, code=bad).status_code == 400
    assert second_step(api, mfa_token, recovery_code="abcd-efgh-jkmn").status_code == 400
    for mfa_code in (bad, "abcd-efgh-jkmn"):
        body = {"password": PASSWORD, "mfa_code": mfa_code}
        assert send(api, "DELETE", TOTP, body, ada.raw).status_code == 400
    body = {"password": PASSWORD, "mfa_code": bad}
    assert send(api, "POST", RECOVERY, body, ada.raw).status_code == 400

    right = {"password": PASSWORD, "mfa_code": clock.code(ada.secret)}
    assert_too_many(send(api, "DELETE", TOTP, right, ada.raw), settings)
    assert_too_many(second_step(api, mfa_token, code=clock.code(ada.secret)), settings)
    assert TotpDevice.objects.get(user=ada.user).is_on


def test_wrong_codes_at_confirm_count_too(api, off, clock, settings):
    secret = enrol(api, off).json()["secret"]
    bad = {"code": wrong(clock.code(secret))}

    answers = [send(api, "POST", CONFIRM, bad, off.raw).status_code for _ in range(5)]
    limited = send(api, "POST", CONFIRM, {"code": clock.code(secret)}, off.raw)

    assert answers == [400] * 5
    assert_too_many(limited, settings)
    assert status_of(api, off)["totp"] is False


def test_a_right_second_factor_clears_the_count(api, ada, clock, settings):
    mfa_token = mfa_token_for(api, EMAIL)
    bad = wrong(clock.code(ada.secret))
    for _ in range(4):
        assert second_step(api, mfa_token, code=bad).status_code == 400

    assert second_step(api, mfa_token, code=clock.code(ada.secret)).status_code == 200
    assert mfa_failures(ada.user) == 0

    mfa_token = mfa_token_for(api, EMAIL)
    answers = [second_step(api, mfa_token, code=bad).status_code for _ in range(6)]
    assert answers == [400] * 5 + [429]


def test_a_right_confirm_and_a_right_mfa_code_clear_the_count_too(api, off, clock):
    secret = enrol(api, off).json()["secret"]
    for _ in range(4):
        send(api, "POST", CONFIRM, {"code": wrong(clock.code(secret))}, off.raw)
    assert send(api, "POST", CONFIRM, {"code": clock.code(secret)}, off.raw).status_code == 200
    assert mfa_failures(off.user) == 0

    for _ in range(4):
        body = {"password": PASSWORD, "mfa_code": "abcd-efgh-jkmn"}
        assert send(api, "POST", RECOVERY, body, off.raw).status_code == 400
    body = {"password": PASSWORD, "mfa_code": clock.code(secret, 1)}
    assert send(api, "POST", RECOVERY, body, off.raw).status_code == 200
    assert mfa_failures(off.user) == 0


def test_the_count_is_per_account_and_its_window_ends(api, ada, off, clock, settings):
    grace_secret, _ = totp_enable(off.user)
    mfa_token = mfa_token_for(api, EMAIL)
    for _ in range(6):
        second_step(api, mfa_token, code="000000")
    grace = second_step(api, mfa_token_for(api, off.user.email), code=clock.code(grace_secret))
    assert grace.status_code == 200  # another account: its own count

    window = timedelta(seconds=settings.MFA_FAILURE_WINDOW_SECONDS)
    AddressCounter.objects.filter(kind=MFA).update(window_started_at=timezone.now() - window)
    assert second_step(api, mfa_token, code=clock.code(ada.secret)).status_code == 200


# --- the sensitive changes need mfa_code --------------------------------------------------

SENSITIVE = {
    "email": ("POST", "/api/v1/me/email", {"new_email": "ada@new.example", "password": PASSWORD}),
    "password": (
        "POST",
        "/api/v1/me/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ),
    "close": ("DELETE", ME, {"password": PASSWORD}),
}
DONE = {"email": 202, "password": 204, "close": 204}


def unchanged(user: User) -> bool:
    fresh = User.objects.get(pk=user.pk)
    return fresh.email == EMAIL and fresh.check_password(PASSWORD) and fresh.is_active


@pytest.mark.parametrize("action", SENSITIVE)
def test_a_sensitive_change_without_a_right_mfa_code_is_400(api, ada, clock, action):
    method, path, body = SENSITIVE[action]
    missing = send(api, method, path, body, ada.raw)
    wrong_totp = send(
        api, method, path, {**body, "mfa_code": wrong(clock.code(ada.secret))}, ada.raw
    )
    wrong_recovery = send(api, method, path, {**body, "mfa_code": "abcd-efgh-jkmn"}, ada.raw)

    for response in (missing, wrong_totp, wrong_recovery):
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "invalid_credentials"
    assert missing.json()["detail"] == MFA_CODE_MISSING
    assert unchanged(ada.user)
    assert mfa_failures(ada.user) == 2  # the wrong ones; a missing one is not a guess


@pytest.mark.parametrize("factor", ["totp", "recovery"])
@pytest.mark.parametrize("action", SENSITIVE)
def test_a_sensitive_change_with_a_right_mfa_code_is_done(api, ada, clock, action, factor):
    method, path, body = SENSITIVE[action]
    mfa_code = clock.code(ada.secret) if factor == "totp" else ada.recovery[0]

    response = send(api, method, path, {**body, "mfa_code": mfa_code}, ada.raw)

    assert response.status_code == DONE[action], response.content
    assert not unchanged(ada.user) or action == "email"  # the email changes on confirm
    if action == "close":  # closing deletes the authenticator and the recovery codes
        assert not TotpDevice.objects.filter(user=ada.user).exists()
        assert not RecoveryCode.objects.filter(user=ada.user).exists()
    elif factor == "recovery":
        assert RecoveryCode.objects.filter(user=ada.user, used_at__isnull=False).count() == 1
    else:
        assert TotpDevice.objects.get(user=ada.user).last_step == clock.step()


def test_a_sensitive_change_without_totp_needs_no_mfa_code(api, off):
    method, path, body = SENSITIVE["password"]

    assert send(api, method, path, body, off.raw).status_code == 204


# --- staff reset, and the purge of old mfa_tokens ------------------------------------------


def test_the_admin_resets_two_factor_login_and_the_user_is_told(api, ada, off):
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    admin = Client()
    admin.force_login(root)
    url = reverse("admin:signup_user_changelist")

    response = admin.post(
        url,
        {"action": "reset_two_factor", "_selected_action": [ada.user.pk, off.user.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Two-factor login reset for 1 account(s); 1 had it off." in response.content.decode()
    assert status_of(api, ada) == {"totp": False, "recovery_codes_left": 0}
    assert not RecoveryCode.objects.filter(user=ada.user).exists()
    (notice,) = outbox_rows(ada.user, messages.MFA_DISABLED_EMAIL)
    assert notice.context["by"] == "staff"
    assert not outbox_rows(off.user, messages.MFA_DISABLED_EMAIL)
    assert "access_token" in login(api, EMAIL).json()


def test_the_admin_page_shows_the_state_but_no_secret(ada):
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    admin = Client()
    admin.force_login(root)

    page = admin.get(reverse("admin:signup_user_change", args=[ada.user.pk])).content.decode()

    assert "on (authenticator app); 10 recovery code(s) left" in page
    assert ada.secret not in page
    assert TotpDevice.objects.get(user=ada.user).secret not in page


def test_old_mfa_tokens_are_purged(api, ada, settings):
    mfa_token_for(api, EMAIL)
    mfa_token_for(api, EMAIL)
    age = timedelta(seconds=settings.MFA_TOKEN_TTL_SECONDS + 1)
    MfaChallenge.objects.filter(pk=MfaChallenge.objects.first().pk).update(
        created_at=timezone.now() - age
    )

    assert mfa_challenges_purge() == 1
    assert MfaChallenge.objects.count() == 1


def test_a_password_change_ends_an_unfinished_two_factor_login(api):
    """A first step done with the old password cannot finish after the change."""
    user = verified_user()
    _, codes = totp_enable(user)
    first = mfa_token_for(api, EMAIL)
    raw = token_for(user)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "mfa_code": codes[0]}
    assert api.post_json("/api/v1/me/password", body, **bearer(raw)).status_code == 204

    answer = api.post_json(AUTH_MFA, {"mfa_token": first, "recovery_code": codes[1]})

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_code"
