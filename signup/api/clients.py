"""Who is asking, as a session records it: a coarse client and its address."""

import ipaddress

from django.http import HttpRequest

from core.throttles import client_ip
from signup.flows.reauth import Proof
from signup.tokens import Client, client_describe


def request_client(request: HttpRequest) -> Client:
    """The request's User-Agent, described, and its IP through the trusted proxies."""
    try:
        ip: str | None = str(ipaddress.ip_address(client_ip(request).strip()))
    except ValueError:  # no address (a Unix socket), or a proxy's odd hop
        ip = None
    return Client(description=client_describe(request.headers.get("User-Agent", "")), ip=ip)


def request_proof(request: HttpRequest, payload, *, password: str | None = None) -> Proof:
    """The re-authentication a body carries (signup.schemas.me.ReauthIn's
    fields; password names another field's value, as a password change's)."""
    return Proof(
        ip=request_client(request).ip or "",
        password=password if password is not None else getattr(payload, "password", None),
        code=getattr(payload, "code", None),
        mfa_code=getattr(payload, "mfa_code", None),
    )
