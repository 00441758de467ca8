"""`manage.py gatehouse_provider ACTION ...`: the test setup of the provider, by management
command (no admin site, no fixtures file):

  setup WEB_SECRET INTROSPECT_SECRET API_SECRET   users alice (admin) and bob (reader), password
                                       "wonderland" / "builder"; three confidential clients:
                                         gatehouse-web  browser login (code flow, PKCE), no consent page
                                         gatehouse      the gateway's introspection client
                                         api-client     mints tokens by the password grant (ID tokens with
                                                        aud=api-client, opaque access tokens)
                                       and one RS256 signing key
  redirect CLIENT_ID URI...            sets the client's redirect (and post-logout redirect) URIs
  rotate                               a new signing key; every older key removed (prints the new kid)
  kids                                 prints the kids of the keys served
  expire ACCESS_TOKEN                  the access token's expiry set in the past
  revoke ACCESS_TOKEN                  the access token deleted (what a revocation leaves behind)
"""
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from oidc_provider.models import Client, ResponseType, RSAKey, Token

USERS = {"alice": ("wonderland", ["admin"]), "bob": ("builder", ["reader"])}


class Command(BaseCommand):
    help = "Set up and drive the gatehouse test provider"

    def add_arguments(self, parser):
        parser.add_argument("action")
        parser.add_argument("rest", nargs="*")

    def handle(self, *args, **options):
        action, rest = options["action"], options["rest"]
        handler = getattr(self, f"do_{action}", None)
        if handler is None:
            raise CommandError(f"unknown action {action}")
        handler(*rest)

    def do_setup(self, web_secret, introspect_secret, api_secret):
        for name, (password, groups) in USERS.items():
            user = get_user_model().objects.create_user(name, f"{name}@example.test", password)
            for group in groups:
                user.groups.add(Group.objects.get_or_create(name=group)[0])
        code = ResponseType.objects.get(value="code")
        self._client("gatehouse-web", web_secret, ["openid", "profile", "email"], [code])
        # django-oidc-provider quirk: an introspecting client needs the scope `token_introspection`
        # and, with OIDC_INTROSPECTION_VALIDATE_AUDIENCE_SCOPE (default True), the token's
        # audience (the client id the token was issued to) among its scopes too.
        self._client("gatehouse", introspect_secret, ["token_introspection", "api-client"], [code])
        self._client("api-client", api_secret, ["openid", "profile", "email"], [code])
        call_command("creatersakey")

    def _client(self, client_id, secret, scopes, response_types):
        client = Client(name=client_id, client_id=client_id, client_secret=secret, client_type="confidential",
                        jwt_alg="RS256", require_consent=False, reuse_consent=True)
        client.scope = scopes
        client.redirect_uris = ["http://127.0.0.1/unused"]
        client.save()
        client.response_types.set(response_types)

    def do_redirect(self, client_id, *uris):
        client = Client.objects.get(client_id=client_id)
        client.redirect_uris = list(uris)
        client.post_logout_redirect_uris = list(uris)
        client.save()

    def do_rotate(self):
        old = list(RSAKey.objects.values_list("pk", flat=True))
        call_command("creatersakey", stdout=self.stderr)
        RSAKey.objects.filter(pk__in=old).delete()
        self.stdout.write(RSAKey.objects.get().kid)

    def do_kids(self):
        for key in RSAKey.objects.all():
            self.stdout.write(key.kid)

    def do_expire(self, access_token):
        updated = Token.objects.filter(access_token=access_token).update(
            expires_at=timezone.now() - timedelta(seconds=5))
        if updated != 1:
            raise CommandError("no such token")

    def do_revoke(self, access_token):
        deleted, _ = Token.objects.filter(access_token=access_token).delete()
        if deleted != 1:
            raise CommandError("no such token")
