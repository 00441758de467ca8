"""Claims the gateway reads: `roles` (the user's Django group names) in ID tokens and in
introspection answers."""
from oidc_provider.models import Token


def _roles(user):
    return sorted(group.name for group in user.groups.all()) if user is not None else []


def add_roles_to_id_token(id_token, user, token, request, **kwargs):
    id_token["roles"] = _roles(user)
    return id_token


def add_roles_to_introspection(introspection_response, client, id_token):
    sub = (id_token or {}).get("sub")
    if sub is not None:
        from django.contrib.auth import get_user_model
        user = get_user_model().objects.filter(username=sub).first()
        introspection_response["roles"] = _roles(user)
    return introspection_response


def sub_is_username(user):
    """`sub` = the username, so that tests read `alice` rather than a row id."""
    return user.username
