"""Property tests: one-time codes (signup.codes) and email normalisation (signup.schemas)."""

import string

import pytest
from hypothesis import assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

import signup.codes
from signup.codes import CODE_DIGITS, code_generate, code_hash, code_matches
from signup.models import VerificationCode
from signup.schemas.common import normalize_email

FAST = hypothesis_settings(max_examples=300, deadline=None, database=None)

codes = st.text(alphabet=string.digits, min_size=6, max_size=6)
user_ids = st.integers(min_value=1, max_value=2**63 - 1)
purposes = st.sampled_from([p.value for p in VerificationCode.Purpose])


# --- code_generate --------------------------------------------------------------


def test_generated_codes_are_six_ascii_digits_with_leading_zeros_kept():
    generated = [code_generate() for _ in range(3000)]

    assert all(len(c) == CODE_DIGITS == 6 and c.isascii() and c.isdigit() for c in generated)
    # P(no code starts with 0 in 3000) = 0.9**3000: a dropped zero-padding shows.
    assert any(c.startswith("0") for c in generated)
    # And they are not constant (P(repeat) of a pair is 1e-6; 3000 draws rarely collide much).
    assert len(set(generated)) > 2900


def test_code_generate_draws_from_the_csprng(monkeypatch):
    calls = []

    def randbelow(n):
        calls.append(n)
        return 42

    monkeypatch.setattr(signup.codes.secrets, "randbelow", randbelow)

    assert code_generate() == "000042"
    assert calls == [10**6]


# --- code_hash / code_matches ---------------------------------------------------


@FAST
@given(code=codes, user_id=user_ids, purpose=purposes)
def test_a_code_matches_its_own_hash(code, user_id, purpose):
    stored = code_hash(code, user_id=user_id, purpose=purpose)

    assert code_matches(code, stored, user_id=user_id, purpose=purpose)
    assert len(stored) == 64
    assert set(stored) <= set(string.hexdigits.lower())
    assert code_hash(code, user_id=user_id, purpose=purpose) == stored  # deterministic


@FAST
@given(code=codes, other=codes, user_id=user_ids, purpose=purposes)
def test_another_code_does_not_match(code, other, user_id, purpose):
    assume(code != other)
    stored = code_hash(code, user_id=user_id, purpose=purpose)

    assert not code_matches(other, stored, user_id=user_id, purpose=purpose)


@FAST
@given(code=codes, user_id=user_ids, other_user=user_ids, purpose=purposes)
def test_a_hash_is_bound_to_its_user(code, user_id, other_user, purpose):
    assume(user_id != other_user)
    stored = code_hash(code, user_id=user_id, purpose=purpose)

    assert not code_matches(code, stored, user_id=other_user, purpose=purpose)


@FAST
@given(code=codes, user_id=user_ids)
def test_a_hash_is_bound_to_its_purpose(code, user_id):
    stored = code_hash(code, user_id=user_id, purpose="verify_email")

    assert not code_matches(code, stored, user_id=user_id, purpose="login")


@FAST
@given(code=st.text(max_size=12), user_id=user_ids, purpose=purposes)
@example(code="12345", user_id=1, purpose="login")
@example(code="1234567", user_id=1, purpose="login")
@example(code=" 12345", user_id=1, purpose="login")
@example(code="12345 ", user_id=1, purpose="login")
@example(code="\u0661\u0662\u0663\u0664\u0665\u0666", user_id=1, purpose="login")  # Arabic-Indic
@example(code="\uff11\uff12\uff13\uff14\uff15\uff16", user_id=1, purpose="login")  # full width
@example(code="12345\x00", user_id=1, purpose="login")
@example(code="+12345", user_id=1, purpose="login")
@example(code="", user_id=1, purpose="login")
def test_anything_but_six_ascii_digits_never_matches(code, user_id, purpose):
    """Not even the hash of itself: the shape check comes before the HMAC."""
    assume(not (len(code) == 6 and code.isascii() and code.isdigit()))
    stored = code_hash(code, user_id=user_id, purpose=purpose)

    assert not code_matches(code, stored, user_id=user_id, purpose=purpose)


def test_hash_is_keyed_with_secret_key(settings):
    before = code_hash("042917", user_id=7, purpose="verify_email")

    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789abcdef"

    after = code_hash("042917", user_id=7, purpose="verify_email")
    assert before != after
    assert not code_matches("042917", before, user_id=7, purpose="verify_email")


def test_matching_compares_in_constant_time(monkeypatch):
    seen = []
    real = signup.codes.hmac.compare_digest

    def compare_digest(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signup.codes.hmac, "compare_digest", compare_digest)
    stored = code_hash("042917", user_id=7, purpose="verify_email")

    assert code_matches("042917", stored, user_id=7, purpose="verify_email")
    assert not code_matches("042918", stored, user_id=7, purpose="verify_email")
    assert len(seen) == 2
    assert all(b == stored for _, b in seen)


# --- normalize_email -------------------------------------------------------------

# Valid addresses only: no ".." in the local part, and no "ab--" label (the
# IDNA rule reserves "--" in the 3rd and 4th places; email-validator applies it).
local_parts = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]\Z").filter(
    lambda local: ".." not in local
)
labels = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}[A-Za-z0-9]\Z").filter(
    lambda label: label[2:4] != "--"
)
tlds = st.sampled_from(["com", "org", "NET", "Io", "de", "COM"])
addresses = st.builds(
    lambda local, domain, tld: f"{local}@{'.'.join(domain)}.{tld}",
    local_parts,
    st.lists(labels, min_size=1, max_size=3),
    tlds,
)


def normalized_or_none(value: str) -> str | None:
    try:
        return normalize_email(value)
    except PydanticCustomError:
        return None


@FAST
@given(address=addresses | st.emails())
@example(address="Ada@EXAMPLE.COM")
@example(address="ada.lovelace+tag@Mail.Example.Co.UK")
def test_normalisation_is_idempotent_and_lowercases_the_domain(address):
    once = normalized_or_none(address)
    assume(once is not None)

    assert normalize_email(once) == once
    local, _, domain = once.rpartition("@")
    assert domain == domain.lower()
    assert local == address.rpartition("@")[0]  # the local part is kept as sent


@FAST
@given(address=addresses)
def test_domain_case_does_not_change_the_normalized_address(address):
    local, _, domain = address.rpartition("@")
    variants = {f"{local}@{d}" for d in (domain, domain.upper(), domain.lower(), domain.title())}

    results = {normalized_or_none(v) for v in variants}

    assert len(results) == 1
    assert None not in results


@FAST
@given(address=addresses)
def test_local_part_case_is_kept_but_lower_cases_to_one_identity(address):
    """The whole address is the identity, case-insensitively (the unique index is
    on LOWER(email)): the normalized forms of case variants lower-case alike."""
    local, _, domain = address.rpartition("@")

    upper = normalize_email(f"{local.upper()}@{domain}")
    lower = normalize_email(f"{local.lower()}@{domain}")

    assert upper.lower() == lower.lower()
    assert upper.rpartition("@")[0] == local.upper()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a" * 245 + "@example.com",
    ],
)
def test_invalid_addresses_are_refused(value):
    with pytest.raises(PydanticCustomError):
        normalize_email(value)
