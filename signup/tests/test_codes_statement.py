"""verification_code_issue: the older live codes die and the new one is written
in one statement on PostgreSQL (issue 23), with the contract unchanged."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.sqlshape import sql_shape
from signup.codes import code_hash, code_matches, verification_code_issue
from signup.models import User, VerificationCode

pytestmark = pytest.mark.django_db
Purpose = VerificationCode.Purpose
ON_POSTGRESQL = connection.vendor == "postgresql"


def live(user: User, purpose: str) -> list[VerificationCode]:
    return list(VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True))


@pytest.fixture
def two_users():
    return (
        User.objects.create_user("ada@example.com", None),
        User.objects.create_user("bob@example.com", None),
    )


def test_the_older_live_code_of_the_purpose_dies_and_nothing_else(two_users):
    ada, bob = two_users
    verification_code_issue(user=ada, purpose=Purpose.LOGIN)
    (older,) = live(ada, Purpose.LOGIN)
    reset = verification_code_issue(user=ada, purpose=Purpose.RESET)
    bobs = verification_code_issue(user=bob, purpose=Purpose.LOGIN)
    used = VerificationCode.objects.create(
        user=ada,
        purpose=Purpose.LOGIN,
        code_hash="0" * 64,
        expires_at=timezone.now(),
        used_at=timezone.now() - timedelta(minutes=1),
    )

    code = verification_code_issue(user=ada, purpose=Purpose.LOGIN)

    older.refresh_from_db()
    assert older.used_at is not None
    (new,) = live(ada, Purpose.LOGIN)
    assert new.pk != older.pk
    assert code_matches(code, new.code_hash, user_id=ada.pk, purpose=Purpose.LOGIN)
    assert new.code_hash == code_hash(code, user_id=ada.pk, purpose=Purpose.LOGIN)
    assert new.expires_at > new.created_at
    assert (new.attempts, new.used_at) == (0, None)
    # Other purposes and other users keep their live codes; a used one keeps its time.
    (ada_reset,) = live(ada, Purpose.RESET)
    assert code_matches(reset, ada_reset.code_hash, user_id=ada.pk, purpose=Purpose.RESET)
    (bob_login,) = live(bob, Purpose.LOGIN)
    assert code_matches(bobs, bob_login.code_hash, user_id=bob.pk, purpose=Purpose.LOGIN)
    assert VerificationCode.objects.get(pk=used.pk).used_at == used.used_at


def test_the_first_code_of_a_user_is_live(two_users):
    ada, _ = two_users

    code = verification_code_issue(user=ada, purpose=Purpose.EMAIL_CHANGE)

    (new,) = live(ada, Purpose.EMAIL_CHANGE)
    assert code_matches(code, new.code_hash, user_id=ada.pk, purpose=Purpose.EMAIL_CHANGE)


def test_kill_and_insert_is_one_statement_on_postgresql(two_users):
    ada, _ = two_users
    verification_code_issue(user=ada, purpose=Purpose.VERIFY_EMAIL)

    with CaptureQueriesContext(connection) as captured:
        verification_code_issue(user=ada, purpose=Purpose.VERIFY_EMAIL)

    shapes = [sql_shape(q["sql"]) for q in captured.captured_queries]
    if not ON_POSTGRESQL:  # SQLite has no UPDATE inside WITH: the two ORM statements
        assert [shape.split()[0] for shape in shapes] == ["UPDATE", "INSERT"], shapes
        return
    (shape,) = shapes
    assert shape.startswith('WITH "killed" AS ( UPDATE "signup_verificationcode" SET "used_at"')
    assert 'INSERT INTO "signup_verificationcode"' in shape
