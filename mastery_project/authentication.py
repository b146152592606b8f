"""Bearer JWTs: our own (HS256, simplejwt) and, when configured, an external issuer's
(RS256 public key, issuer and audience from settings; the user named by a claim must
exist here, which is where its role comes from).

A correctly signed token can still name no user of ours: the user was erased (GDPR erasure
deletes a student's login), or a claim is not what simplejwt wrote. Both are 401, never a
500. SIMPLE_JWT's AUTH_TOKEN_CLASSES and TOKEN_REFRESH_SERIALIZER name the classes below.

Each process verifies a token once (`token_cache`) and reads the user it names once per
AUTH_USER_CACHE_SECONDS (`user_cache`), not on every request.
"""

import copy
import math
import re
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import prefetch_related_objects
from django.db.models.signals import post_delete, post_save
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import extend_schema_serializer
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    AuthenticationFailed,
    InvalidToken,
    TokenBackendError,
    TokenError,
)
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

# simplejwt writes the user id as `str(user.pk)`: the ASCII digits of a positive bigint.
_USER_ID = re.compile(r"[1-9][0-9]{0,18}")
_BIGINT_MAX = 2**63 - 1
# A jti is stored in the blacklist's varchar(255); PostgreSQL text cannot hold NUL.
_JTI = re.compile(r"[\x21-\x7e]{1,255}")
_LATEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last instant a datetime holds


def check_claims(claims: dict[str, Any]) -> None:
    """TokenError (401) for a signed token whose claims simplejwt, the ORM or PostgreSQL
    would choke on (ValueError, TypeError, OverflowError, DataError: a 500)."""
    user_id = claims.get(api_settings.USER_ID_CLAIM)
    if isinstance(user_id, str) and _USER_ID.fullmatch(user_id):
        user_id = int(user_id)
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= _BIGINT_MAX:
        raise TokenError("Token names no valid user.")
    exp = claims.get("exp")
    if (
        isinstance(exp, bool)
        or not isinstance(exp, int | float)
        or not math.isfinite(exp)
        or not 0 <= exp <= _LATEST_EPOCH
    ):
        raise TokenError("Token has no valid expiry.")
    jti = claims.get(api_settings.JTI_CLAIM)
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise TokenError("Token has no valid id.")


class MasteryAccessToken(AccessToken):
    """An access token whose claims are checked before simplejwt uses them."""

    def verify(self) -> None:
        check_claims(self.payload)
        super().verify()


class MasteryRefreshToken(RefreshToken):
    """A refresh token whose claims are checked before simplejwt uses them."""

    def verify(self, *args, **kwargs) -> None:
        check_claims(self.payload)
        super().verify(*args, **kwargs)


class MasteryJWTScheme(SimpleJWTScheme):
    """Documents our authentication as the bearer JWT scheme in the OpenAPI schema."""

    target_class = "mastery_project.authentication.MasteryJWTAuthentication"


class ExternalToken(dict):
    """The verified claims of an external issuer's token."""


class ExpiringCache:
    """A bounded per-process map whose entries lapse at a time given with each; `get` hands
    out a copy, so that nothing a request sets on a value is seen by another."""

    MAX_ITEMS = 10_000

    def __init__(self, clock):
        self.clock = clock
        self._items: dict[object, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: object):
        entry = self._items.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return copy.copy(entry[1])

    def put(self, key: object, value, *, until: float) -> None:
        with self._lock:
            if len(self._items) >= self.MAX_ITEMS:
                self._items.pop(next(iter(self._items)), None)
            self._items[key] = (until, copy.copy(value))

    def forget(self, key: object) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# The users our tokens named, each for AUTH_USER_CACHE_SECONDS. A user saved or deleted
# through the ORM leaves the cache of the process that did it at once (the signals below);
# in other processes, and after a bulk `update()`, a user who was deactivated, erased or had
# its role changed is refused, or seen anew, within the window.
user_cache = ExpiringCache(time.monotonic)
# Our own access tokens once their signature and claims were checked, until they expire:
# a token is verified once per process, not on every request.
token_cache = ExpiringCache(time.time)


def _forget_user(sender, instance, **kwargs) -> None:
    user_cache.forget(instance.pk)


post_save.connect(_forget_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="user-cache")
post_delete.connect(_forget_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="user-cache-del")


class MasteryJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes):
        token = token_cache.get(raw_token)
        if token is not None:
            return token
        try:
            token = super().get_validated_token(raw_token)
        except InvalidToken:
            if not settings.JWT_EXTERNAL_PUBLIC_KEY:
                raise
        else:
            token_cache.put(raw_token, token, until=token["exp"])
            return token
        backend = TokenBackend(
            "RS256",
            verifying_key=settings.JWT_EXTERNAL_PUBLIC_KEY,
            audience=settings.JWT_EXTERNAL_AUDIENCE,
            issuer=settings.JWT_EXTERNAL_ISSUER,
            leeway=settings.JWT_EXTERNAL_LEEWAY_SECONDS,
        )
        try:
            claims = backend.decode(raw_token.decode(), verify=True)
        except (TokenBackendError, UnicodeDecodeError) as exc:
            raise InvalidToken("Token is invalid or expired.") from exc
        if "exp" not in claims:
            raise InvalidToken("Token has no expiry.")
        return ExternalToken(claims)

    def get_user(self, validated_token):
        if not isinstance(validated_token, ExternalToken):
            # check_claims has made the user id a positive bigint, as str(pk) or int.
            user_id = int(validated_token[api_settings.USER_ID_CLAIM])
            user = user_cache.get(user_id)
            if user is None:
                user = super().get_user(validated_token)
                # With its student (the audit names a student's own login by it), once.
                prefetch_related_objects([user], "student")
                until = user_cache.clock() + settings.AUTH_USER_CACHE_SECONDS
                user_cache.put(user_id, user, until=until)
            return user
        username = validated_token.get(settings.JWT_EXTERNAL_USERNAME_CLAIM)
        if not isinstance(username, str) or not username:
            raise InvalidToken("Token names no user.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed("User not found or inactive.", code="user_not_found")
        return user


@extend_schema_serializer(component_name="TokenRefresh")
class MasteryTokenRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh with checked claims, and 401 (not simplejwt's DoesNotExist, a 500)
    for a token whose user is gone."""

    token_class = MasteryRefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from None
