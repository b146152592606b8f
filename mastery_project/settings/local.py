"""Development settings: no configuration needed beyond `make run`'s embedded services."""

from . import devservices_env  # noqa: F401  (must run before base reads the URLs)
from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-not-for-production-use")
SIMPLE_JWT["SIGNING_KEY"] = env("JWT_SIGNING_KEY", default="dev-only-jwt-signing-key-0123456789")  # noqa: F405
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING["handlers"]["default"]["formatter"] = LOG_FORMAT  # noqa: F405
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = [
    "mastery_project.renderers.OrjsonRenderer",
    "rest_framework.renderers.BrowsableAPIRenderer",
]
# Static files come from the apps through WhiteNoise's finders; no collectstatic needed.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
ERASURE_HASH_KEY = env("ERASURE_HASH_KEY", default="dev-only-erasure-hash-key-0123456789")
# A front end's dev server on this machine (Vite 5173, Create React App / Next.js 3000).
CORS_ALLOWED_ORIGINS = env.list(
    "CORS_ALLOWED_ORIGINS",
    default=[
        f"http://{host}:{port}" for port in (3000, 5173) for host in ("localhost", "127.0.0.1")
    ],
)
