"""Where RD Station's OAuth endpoints live, and the rule that credentials only travel over HTTPS."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from dbt_rdcrm.errors import AuthError

DEFAULT_BASE_URL = "https://api.rd.services/crm/v2"


def normalize_base_url(base_url: str) -> str:
    """The key a login is stored under: no trailing slash, lower-case scheme and host."""
    parts = urlsplit(base_url.strip())
    if not parts.scheme or not parts.netloc:
        raise AuthError(f"invalid CRM base URL {base_url!r}: expected e.g. {DEFAULT_BASE_URL}")
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def token_url_for(base_url: str) -> str:
    """``https://api.rd.services/crm/v2`` -> ``https://api.rd.services/oauth2/token``."""
    return origin(base_url) + "/oauth2/token"


def authorize_url_for(base_url: str) -> str:
    """``https://api.rd.services/crm/v2`` -> ``https://api.rd.services/oauth2/authorize``."""
    return origin(base_url) + "/oauth2/authorize"


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, what: str) -> str:
    """Return ``url`` if it is HTTPS, or plain HTTP on a loopback host; raise AuthError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return url
    raise AuthError(
        f"refusing to send credentials to {what} {url!r}: it must be an https:// URL "
        "(plain http is only allowed on localhost)"
    )
