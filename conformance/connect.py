"""openstacksdk connections for the roles a profile names.

Creating a connection reads clouds.yaml but sends no request: authentication
happens on the first call.  :func:`check_roles` therefore runs at configure
time, so a role naming a cloud that clouds.yaml lacks is a profile error
(exit 4) before any cloud call.
"""

from __future__ import annotations

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
            loader.get_one(cloud=cloud)
        except exceptions.ConfigException as exc:
            raise ProfileError(profile.source or "-", f"roles.{role}",
                               f"cloud {cloud!r} is not usable in {where} ({exc})",
                               "name a cloud defined in clouds.yaml") from None


def role_connections(profile: Profile, roles: list[str] | None = None) -> dict[str, Any]:
    """One (lazy) openstack.connection.Connection per role the profile names."""
    from openstack import connection

    loader = _loader(profile)
    wanted = role_clouds(profile)
    return {role: connection.Connection(config=loader.get_one(cloud=cloud))
            for role, cloud in wanted.items() if roles is None or role in roles}
