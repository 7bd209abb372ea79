"""Keep credentials out of error messages and logs, and warn about credentials sent in clear text.

Real backends copy URLs and server answers into their exceptions so that a failure names its cause;
a URL may carry ``user:password@`` and an answer may echo an ``Authorization`` header or a token.
:func:`redact` removes those before a message is built. :func:`warn_cleartext_credentials` warns
(``UserWarning``) when basic auth or a bearer token is about to be sent over plain ``http://`` to a
host other than the loopback interface.
"""

from __future__ import annotations

import re
import warnings
from urllib.parse import urlsplit

__all__ = ["REDACTED", "redact", "redact_url", "warn_cleartext_credentials"]

#: What replaces a secret in messages.
REDACTED = "***"

# scheme://user:password@host  or  scheme://token@host
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@'\"]+)@")
# Authorization: Bearer xyz / Basic xyz (header dumps, reprs of header dicts)
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic)?\s*)([^\s'\",}]+)")
# token=..., password=..., api_key=... in query strings, dict reprs and key: value dumps
_SECRET_PARAM = re.compile(
    r"(?i)(\b(?:access_token|token|password|passwd|secret|api[_-]?key|client[_-]?secret)['\"]?\s*[:=]\s*['\"]?)"
    r"([^\s&'\",}]+)"
)


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` and secret query parameters replaced by ``***``."""
    return redact(url)


def redact(text: str) -> str:
    """``text`` with URL credentials, ``Authorization`` values and ``token=``-style secrets replaced."""
    if not isinstance(text, str):
        text = str(text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def _loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or bool(host and host.startswith("127."))


def warn_cleartext_credentials(url: str, what: str, *, has_credentials: bool = True) -> bool:
    """Warn (``UserWarning``) if credentials for ``what`` would travel over plain http to a remote host.

    Credentials embedded in ``url`` count as well as ``has_credentials``. Loopback hosts are exempt
    (a port-forward or a local test server). Returns whether it warned.
    """
    parts = urlsplit(url)
    creds = has_credentials or parts.username is not None or parts.password is not None
    if creds and parts.scheme == "http" and not _loopback(parts.hostname):
        warnings.warn(
            f"{what}: credentials are sent over plain http to {redact_url(url)}; anyone on the path can read "
            "them. Use https:// (or a port-forward to 127.0.0.1).",
            UserWarning,
            stacklevel=3,
        )
        return True
    return False
