"""openstacksdk connections for the roles a profile names.

:func:`check_roles` only reads clouds.yaml (no request), so it runs at
configure time: a role naming a cloud that clouds.yaml lacks is a profile
error (exit 4) before any cloud call.  :func:`role_connections` authenticates.
"""

from __future__ import annotations

import warnings
from typing import Any

from conformance.profile import Profile, ProfileError


def _loader(profile: Profile) -> Any:
    from openstack import config as os_config

    files = [str(profile.clouds_yaml)] if profile.clouds_yaml else None
    return os_config.OpenStackConfig(config_files=files)


def role_clouds(profile: Profile) -> dict[str, str]:
    """The clouds.yaml cloud name of each role the profile names."""
    return {role: cloud for role, cloud in profile.roles.model_dump().items() if cloud}


def check_roles(profile: Profile) -> None:
    """Raise ProfileError if a role names a cloud that clouds.yaml does not define."""
    from openstack import exceptions

    where = str(profile.clouds_yaml) if profile.clouds_yaml else "the clouds.yaml openstacksdk finds"
    try:
        loader = _loader(profile)
    except exceptions.ConfigException as exc:
        raise ProfileError(profile.source or "-", "clouds_yaml", f"{where} is unusable ({exc})",
                           "fix the clouds.yaml or point clouds_yaml at another one") from None
    for role, cloud in role_clouds(profile).items():
        try:
            with warnings.catch_warnings():  # openstacksdk's deprecation noise about optional extras
                warnings.simplefilter("ignore")
                loader.get_one(cloud=cloud)
        except exceptions.ConfigException as exc:
            raise ProfileError(profile.source or "-", f"roles.{role}",
                               f"cloud {cloud!r} is not usable in {where} ({exc})",
                               "name a cloud defined in clouds.yaml") from None


def role_connections(profile: Profile, roles: list[str]) -> dict[str, Any]:
    """Open (authenticate) a connection for each of ``roles`` the profile names, in that order.

    Uses the fixtures' :func:`conformance.fixtures.open_connection`, so the
    compute microversion is pinned exactly as in the tests.
    """
    from conformance.fixtures import open_connection

    clouds = role_clouds(profile)
    return {role: open_connection(clouds[role], profile.clouds_yaml, profile.timeouts.api_call)
            for role in roles if role in clouds}
