"""A minimal Django 5.2 project around django-oidc-provider, for gatehouse's integration tests.

Everything that varies per test run comes from the environment:
  OIDC_PROVIDER_DB        the SQLite file (each provider instance gets its own copy)
  OIDC_PROVIDER_SITE_URL  http://127.0.0.1:PORT — the issuer is SITE_URL + "/openid"
  OIDC_IDTOKEN_EXPIRE     seconds (default 600)
  OIDC_TOKEN_EXPIRE       seconds (default 3600): access-token lifetime
"""
import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "gatehouse-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oidc_provider",
    "provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "provider.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [os.path.join(BASE_DIR, "templates")],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth"]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("OIDC_PROVIDER_DB", os.path.join(BASE_DIR, "..", "provider.sqlite3")),
    # The threaded runserver and the test's management commands write at the same time.
    "OPTIONS": {"timeout": 20},
}}
USE_TZ = True
TIME_ZONE = "UTC"
LOGIN_URL = "/accounts/login/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; test users only
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"oidc_provider": {"handlers": ["console"], "level": "DEBUG"}}}

SITE_URL = os.environ.get("OIDC_PROVIDER_SITE_URL") or None
OIDC_IDTOKEN_EXPIRE = int(os.environ.get("OIDC_IDTOKEN_EXPIRE", "600"))
OIDC_TOKEN_EXPIRE = int(os.environ.get("OIDC_TOKEN_EXPIRE", "3600"))
# The password grant lets tests mint tokens without a browser; the browser flow is tested apart.
OIDC_GRANT_TYPE_PASSWORD_ENABLE = True
OIDC_INTROSPECTION_RESPONSE_SCOPE_ENABLE = True
OIDC_IDTOKEN_SUB_GENERATOR = "provider.hooks.sub_is_username"
OIDC_IDTOKEN_PROCESSING_HOOK = "provider.hooks.add_roles_to_id_token"
OIDC_INTROSPECTION_PROCESSING_HOOK = "provider.hooks.add_roles_to_introspection"
