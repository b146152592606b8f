"""Bearer JWTs: our own (HS256, simplejwt) and, when configured, an external issuer's
(RS256 public key, issuer and audience from settings; the user named by a claim must
exist here, which is where its role comes from)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    AuthenticationFailed,
    InvalidToken,
    TokenBackendError,
)


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
