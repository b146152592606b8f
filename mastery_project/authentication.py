"""Bearer JWTs: our own (HS256, simplejwt) and, when configured, an external issuer's
(RS256 public key, issuer and audience from settings; the user named by a claim must
exist here, which is where its role comes from).

A correctly signed token can still name no user of ours: the user was erased (GDPR erasure
deletes a student's login), or a claim is not what simplejwt wrote. Both are 401, never a
500. SIMPLE_JWT's AUTH_TOKEN_CLASSES and TOKEN_REFRESH_SERIALIZER name the classes below.
"""

import math
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
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


class MasteryJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes):
        try:
            return super().get_validated_token(raw_token)
        except InvalidToken:
            if not settings.JWT_EXTERNAL_PUBLIC_KEY:
                raise
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
            return super().get_user(validated_token)
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
