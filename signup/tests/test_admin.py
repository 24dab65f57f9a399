"""Every way of making a user gives it one profile and one wallet; the admin pages
work for a superuser, are closed to others, and never show a code or its hash."""

import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from messaging.models import Notification, Outbox
from signup.models import Profile, User, VerificationCode, Wallet
from signup.tests.conftest import PASSWORD, issue_code, make_user

pytestmark = pytest.mark.django_db


def assert_one_profile_and_wallet(user: User) -> None:
    assert Profile.objects.filter(user=user).count() == 1
    assert Wallet.objects.filter(user=user).count() == 1
    wallet = Wallet.objects.get(user=user)
    assert (str(wallet.balance), wallet.currency) == ("0.00", "USD")


# --- one profile and one wallet, however the user is made -------------------------


def test_createsuperuser_command(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    call_command("createsuperuser", interactive=False, email="root@Example.com", verbosity=0)

    user = User.objects.get()
    assert user.email == "root@example.com"
    assert user.is_superuser
    assert user.is_staff
    assert user.check_password(PASSWORD)
    assert_one_profile_and_wallet(user)


def test_create_user():
    user = User.objects.create_user("ada@EXAMPLE.com", PASSWORD)

    assert user.email == "ada@example.com"
    assert not user.is_staff
    assert not user.is_superuser
    assert not user.is_verified
    assert_one_profile_and_wallet(user)


def test_create_superuser():
    user = User.objects.create_superuser("root@example.com", PASSWORD)

    assert user.is_superuser
    assert user.is_staff
    assert user.is_verified
    assert_one_profile_and_wallet(user)


def test_a_taken_address_creates_nothing_not_even_a_profile():
    """user_create is atomic: a failed second user leaves no stray profile or wallet."""
    from django.db import IntegrityError, transaction

    from signup.flows.signup import user_create

    make_user("ada@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        user_create(email="ADA@example.com", password=PASSWORD, full_name="Ada")

    assert (User.objects.count(), Profile.objects.count(), Wallet.objects.count()) == (1, 1, 1)


def test_the_model_layer_imports_nothing_above_it():
    """signup.models may import Django and signup.addresses, never services or the API."""
    import ast
    from pathlib import Path

    import signup.models

    tree = ast.parse(Path(signup.models.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {m for m in imported if m.startswith(("signup", "messaging", "core"))} == {
        "signup.addresses"
    }


@pytest.fixture
def admin_client_():
    """A logged-in superuser (pytest-django's admin_client assumes a username)."""
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    client = Client()
    client.force_login(root)
    return client


def test_admin_add_form(admin_client_):
    response = admin_client_.post(
        reverse("admin:signup_user_add"),
        {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(email="ada@example.com")
    assert user.check_password(PASSWORD)
    assert_one_profile_and_wallet(user)
    # Inlines are shown on change, so editing it afterwards must not add a second.
    change = admin_client_.get(reverse("admin:signup_user_change", args=[user.pk]))
    assert change.status_code == 200
    assert_one_profile_and_wallet(user)


def test_admin_add_form_normalizes_the_address_like_the_api(admin_client_):
    admin_client_.post(
        reverse("admin:signup_user_add"),
        {"email": "Ada@EXAMPLE.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert User.objects.filter(email="Ada@example.com").exists()


def test_admin_add_form_refuses_a_taken_address_in_another_case(admin_client_):
    make_user("ada@example.com")

    response = admin_client_.post(
        reverse("admin:signup_user_add"),
        {"email": "ADA@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200  # the form again, with an error; not a 500
    assert response.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="ada@example.com").count() == 1


def test_admin_add_form_applies_the_password_policy(admin_client_):
    response = admin_client_.post(
        reverse("admin:signup_user_add"),
        {"email": "ada@example.com", "password1": "short", "password2": "short"},
    )

    assert response.status_code == 200
    assert not User.objects.filter(email="ada@example.com").exists()


def test_admin_change_form_saves_without_touching_profile_and_wallet(admin_client_):
    user = make_user("ada@example.com")
    url = reverse("admin:signup_user_change", args=[user.pk])
    page = admin_client_.get(url)
    form = page.context["adminform"].form
    data = {
        "email": "ada@example.com",
        "is_active": "on",
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "1",
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-id": str(user.profile.pk),
        "profile-0-user": str(user.pk),
        "profile-0-full_name": "Ada Lovelace",
        "wallet-TOTAL_FORMS": "1",
        "wallet-INITIAL_FORMS": "1",
        "wallet-MIN_NUM_FORMS": "0",
        "wallet-MAX_NUM_FORMS": "1",
        "wallet-0-id": str(user.wallet.pk),
        "wallet-0-user": str(user.pk),
        # The read-only inlines (sessions, a pending email change) post their
        # management forms too, empty here.
        **{
            f"{p}-{k}": "0"
            for p in ("tokens", "email_change")
            for k in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")
        },
        **{f"{p}-MAX_NUM_FORMS": "1000" for p in ("tokens", "email_change")},
    }
    assert "password" in form.fields

    response = admin_client_.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert_one_profile_and_wallet(user)
    assert Profile.objects.get(user=user).full_name == "Ada Lovelace"


# --- pages: 200 for a superuser, a redirect to login for anyone else ------------------


@pytest.fixture
def objects():
    user = make_user("ada@example.com")
    outbox = Outbox.objects.create(kind="signup.verification", user=user)
    notification = Notification.objects.create(
        user=user, kind="welcome", title="Welcome", dedupe_key="welcome"
    )
    return user, outbox, notification


def admin_urls(objects) -> list[str]:
    user, outbox, notification = objects
    return [
        reverse("admin:signup_user_changelist"),
        reverse("admin:signup_user_change", args=[user.pk]),
        reverse("admin:signup_user_add"),
        reverse("admin:signup_user_changelist") + "?q=ada",
        reverse("admin:messaging_outbox_changelist"),
        reverse("admin:messaging_outbox_change", args=[outbox.pk]),
        reverse("admin:messaging_notification_changelist"),
        reverse("admin:messaging_notification_change", args=[notification.pk]),
    ]


def test_admin_pages_answer_200_for_a_superuser(admin_client_, objects):
    for url in admin_urls(objects):
        response = admin_client_.get(url)
        assert response.status_code == 200, url


def test_admin_pages_redirect_anonymous_to_login(objects):
    client = Client()
    for url in admin_urls(objects):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_admin_pages_are_closed_to_a_logged_in_ordinary_user(objects):
    client = Client()
    client.force_login(objects[0])
    for url in admin_urls(objects):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_user_changelist_shows_the_users(admin_client_, objects):
    response = admin_client_.get(reverse("admin:signup_user_changelist"))

    assert b"ada@example.com" in response.content
    assert b"root@example.com" in response.content


def test_a_users_page_links_to_their_outbox_rows_and_notifications(admin_client_, objects):
    user, outbox, notification = objects
    other = make_user("bob@example.com")
    Outbox.objects.create(kind="signup.verification", user=other)
    Notification.objects.create(user=other, kind="welcome", title="Hi Bob", dedupe_key="w")

    page = admin_client_.get(reverse("admin:signup_user_change", args=[user.pk])).content.decode()
    links = re.findall(r'href="([^"]*user__id__exact=[^"]*)"', page)

    assert len(links) == 2
    outbox_page, notifications_page = (admin_client_.get(link) for link in links)
    assert outbox_page.status_code == notifications_page.status_code == 200
    assert outbox_page.context["cl"].result_count == 1
    assert list(outbox_page.context["cl"].result_list) == [outbox]
    assert list(notifications_page.context["cl"].result_list) == [notification]


# --- codes never appear ----------------------------------------------------------------


def test_user_admin_page_never_shows_a_code_or_its_hash(admin_client_, monkeypatch):
    monkeypatch.setattr("signup.codes.code_generate", lambda: "913847")
    user = make_user("ada@example.com")
    code = issue_code(user)
    code_hash = VerificationCode.objects.get(user=user).code_hash

    pages = [
        admin_client_.get(reverse("admin:signup_user_change", args=[user.pk])),
        admin_client_.get(reverse("admin:signup_user_changelist")),
    ]

    for page in pages:
        assert page.status_code == 200
        content = page.content.decode()
        assert code_hash not in content
        assert code_hash[:16] not in content
        assert code not in content
    # The page is the real one: the user's own data is on it.
    assert "ada@example.com" in pages[0].content.decode()


def test_verification_codes_have_no_admin_page(admin_client_):
    response = admin_client_.get("/admin/signup/verificationcode/")

    assert response.status_code == 404


def test_the_user_page_shows_sessions_and_a_pending_email_change_read_only(admin_client_):
    from datetime import timedelta

    from django.utils import timezone

    from signup.models import AccessToken, EmailChange
    from signup.tokens import Client, token_issue

    user = make_user("ada@example.com", verified=True)
    raw, _ = token_issue(user=user, client=Client(description="Firefox on Linux", ip="203.0.113.9"))
    EmailChange.objects.create(
        user=user, new_email="ada@new.example", expires_at=timezone.now() + timedelta(minutes=10)
    )

    page = admin_client_.get(reverse("admin:signup_user_change", args=[user.pk])).content.decode()

    assert "Firefox on Linux" in page
    assert "203.0.113.9" in page
    assert "ada@new.example" in page
    assert raw not in page
    assert AccessToken.objects.get().key_hash not in page  # no secret, not even its hash
