"""Pre-account hijacking (Sudhodanan and Paverd, USENIX Security 2022).

An attacker who knows the victim's address signs it up with the attacker's
password and waits for the victim. After the owner of the mailbox verifies,
only a credential the verifier chose may work: the three orders of the
attack below, end to end through the API, the worker's delivery and a real
SMTP server.
"""

import pytest

from signup.messages import VERIFICATION_EMAIL
from signup.models import PendingSignup, User
from signup.tests.conftest import SIGNUP, VERIFY
from signup.tests.test_flow import deliver

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
VICTIM = "victim@example.com"
ATTACKER_PASSWORD = "attacker passphrase 9911"
VICTIM_PASSWORD = "victims own secret 4242"


@pytest.fixture
def smtp(settings, mail_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    return mail_sink


def signup(api, password: str, full_name: str = "") -> dict:
    response = api.post_json(
        SIGNUP, {"email": VICTIM, "password": password, "full_name": full_name}
    )
    assert response.status_code == 202
    return response.json()


def newest_code(smtp) -> str:
    deliver(VERIFICATION_EMAIL)
    return smtp.handler.to(VICTIM)[-1]["code"]


def verify(api, answer: dict, code: str):
    body = {"email": VICTIM, "code": code}
    if "verification_token" in answer:  # absent before the fix: the attack then succeeds
        body["verification_token"] = answer["verification_token"]
    return api.post_json(VERIFY, body)


def login(api, password: str) -> int:
    return api.post_json(LOGIN, {"email": VICTIM, "password": password}).status_code


def assert_only_the_victim_gets_in(api) -> None:
    assert login(api, ATTACKER_PASSWORD) == 400
    assert login(api, VICTIM_PASSWORD) == 200
    assert not PendingSignup.objects.exists()  # every other signup died with the verification


def test_attacker_signs_up_first(api, smtp, clock):
    signup(api, ATTACKER_PASSWORD, full_name="Mallory")
    clock.advance(61)  # past the resend cooldown: the victim's signup mails a fresh code
    victim = signup(api, VICTIM_PASSWORD, full_name="Victoria")

    assert verify(api, victim, newest_code(smtp)).status_code == 200

    assert_only_the_victim_gets_in(api)
    assert User.objects.get().profile.full_name == "Victoria"


def test_attacker_signs_up_right_after_the_victim(api, smtp, clock):
    """The newest code in the victim's inbox came from the attacker's signup:
    it must still verify the victim's signup, with the victim's password."""
    victim = signup(api, VICTIM_PASSWORD)
    first = newest_code(smtp)
    clock.advance(61)
    attacker = signup(api, ATTACKER_PASSWORD)
    code = newest_code(smtp)
    assert code is not None
    assert len(smtp.handler.to(VICTIM)) == 2

    # The attacker holds a token but not the mail: the code it guesses fails.
    wrong = "000000" if code != "000000" else "111111"
    assert verify(api, attacker, wrong).status_code == 400
    assert verify(api, victim, first).status_code == 400  # the newer code killed it
    assert verify(api, victim, code).status_code == 200

    assert_only_the_victim_gets_in(api)


def test_attacker_polling_login_while_waiting_gets_nothing(api, smtp, clock):
    signup(api, ATTACKER_PASSWORD)
    assert login(api, ATTACKER_PASSWORD) == 403  # unverified: the attacker waits
    clock.advance(61)
    victim = signup(api, VICTIM_PASSWORD)
    assert login(api, ATTACKER_PASSWORD) == 403

    assert verify(api, victim, newest_code(smtp)).status_code == 200

    # The moment the victim verifies, the attacker's password is dead.
    assert login(api, ATTACKER_PASSWORD) == 400
    assert_only_the_victim_gets_in(api)


def test_a_token_of_another_address_does_not_verify(api, smtp, clock):
    """The token names a signup of this address, or the code is refused (and
    counted as a wrong one)."""
    other = api.post_json(SIGNUP, {"email": "other@example.com", "password": ATTACKER_PASSWORD})
    signup(api, VICTIM_PASSWORD)
    code = newest_code(smtp)

    assert verify(api, other.json(), code).status_code == 400
    assert verify(api, {}, code).status_code == 422  # no token at all: a missing field
    assert not User.objects.get(email=VICTIM).is_verified
