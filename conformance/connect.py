"""openstacksdk connections for the roles a profile names.

:func:`check_roles` only reads clouds.yaml (no request), so it runs at
configure time: a role naming a cloud that clouds.yaml lacks is a profile
error (exit 4) before any cloud call.  :func:`role_connections` authenticates.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from conformance.profile import Profile, ProfileError, yaml_problem


def _loader(profile: Profile) -> Any:
    from openstack import config as os_config

    files = [str(profile.clouds_yaml)] if profile.clouds_yaml else None
    return os_config.OpenStackConfig(config_files=files)


def role_clouds(profile: Profile) -> dict[str, str]:
    """The clouds.yaml cloud name of each role the profile names."""
    return {role: cloud for role, cloud in profile.roles.model_dump().items() if cloud}


def check_roles(profile: Profile) -> None:
    """Raise ProfileError if a role names a cloud that clouds.yaml lacks or cannot use."""
    from openstack import exceptions

    where = str(profile.clouds_yaml) if profile.clouds_yaml else "the clouds.yaml openstacksdk finds"
    if profile.clouds_yaml:
        _check_clouds_file(profile.clouds_yaml, role_clouds(profile).values())
    try:
        loader = _loader(profile)
    except exceptions.ConfigException as exc:
        raise ProfileError(profile.source or "-", "clouds_yaml", f"{where} is unusable ({exc})",
                           "fix the clouds.yaml or point clouds_yaml at another one") from None
    for role, cloud in role_clouds(profile).items():
        _check_cloud(profile, loader, role, cloud, where)


def _check_cloud(profile: Profile, loader: Any, role: str, cloud: str, where: str) -> None:
    """Load one cloud's settings and auth plugin as openstacksdk will (no request)."""
    from keystoneauth1.exceptions import auth_plugins
    from openstack import exceptions

    try:
        with warnings.catch_warnings():  # openstacksdk's deprecation noise about optional extras
            warnings.simplefilter("ignore")
            loader.get_one(cloud=cloud)
    except exceptions.ConfigException as exc:
        defined = ", ".join(sorted(getattr(loader, "cloud_config", {}).get("clouds") or {})) or "none"
        raise ProfileError(profile.source or "-", f"roles.{role}",
                           f"cloud {cloud!r} is not usable in {where} ({exc})",
                           f"name a cloud defined in clouds.yaml (defined: {defined})") from None
    except auth_plugins.MissingRequiredOptions as exc:
        names = ", ".join(o.dest for o in exc.options) or "?"
        raise ProfileError(where, f"clouds.{cloud}.auth.{names}", f"required by auth_type but missing "
                           f"({exc})", f"add `{names}:` under clouds.{cloud}.auth") from None
    except auth_plugins.NoMatchingPlugin as exc:
        raise ProfileError(where, f"clouds.{cloud}.auth_type", str(exc),
                           "use password, v3applicationcredential or token") from None
    except (auth_plugins.AuthPluginException, ValueError, TypeError, AttributeError) as exc:
        raise ProfileError(where, f"clouds.{cloud}.auth", f"unusable ({exc or type(exc).__name__})",
                           "give the settings its auth_type needs (see openstacksdk's "
                           "clouds.yaml documentation)") from None


def _check_clouds_file(path: Path, clouds: Iterable[str]) -> None:
    """Check the parts of clouds.yaml openstacksdk would silently ignore or crash on."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(path, "-", f"cannot read clouds.yaml ({exc})",
                           "make the file readable or point clouds_yaml elsewhere") from None
    except yaml.YAMLError as exc:
        raise ProfileError(path, "-", yaml_problem(exc), "fix the YAML syntax") from None
    if not isinstance(data, dict) or not isinstance(data.get("clouds"), dict):
        raise ProfileError(path, "clouds", "missing or not a mapping of cloud names",
                           "start the file with `clouds:` and one entry per cloud") from None
    for cloud in clouds:
        entry = data["clouds"].get(cloud)
        if entry is not None and not isinstance(entry, dict):
            raise ProfileError(path, f"clouds.{cloud}", "is not a mapping",
                               "give the cloud `auth:` and other settings as `key: value` lines")
        auth = (entry or {}).get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise ProfileError(path, f"clouds.{cloud}.auth", "is not a mapping",
                               "give auth_url, username, password, ... as `key: value` lines")


def role_connections(profile: Profile, roles: list[str]) -> dict[str, Any]:
    """Open (authenticate) a connection for each of ``roles`` the profile names, in that order.

    Uses the fixtures' :func:`conformance.fixtures.open_connection`, so the
    compute microversion is pinned exactly as in the tests.
    """
    from conformance.fixtures import open_connection

    clouds = role_clouds(profile)
    return {role: open_connection(clouds[role], profile.clouds_yaml, profile.timeouts.api_call)
            for role in roles if role in clouds}


# Answers worth a second try of an idempotent request: the service or its proxy is briefly unwell.
RETRY_STATUSES = (502, 503, 504)
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def retry_idempotent(conn: Any, attempts: int = 3, backoff: float = 0.5) -> None:
    """Retry GET/HEAD/OPTIONS of ``conn`` at most ``attempts`` times on 502/503/504 or a lost answer.

    Nothing else is ever retried: a POST, PUT or DELETE that fails is one
    ERROR, since repeating it could act twice.  keystoneauth's own retries are
    switched off in :func:`conformance.fixtures.open_connection`.
    """
    policy = _idempotent_retry()(
        total=attempts, connect=attempts, read=attempts, status=attempts, other=0,
        allowed_methods=RETRY_METHODS, status_forcelist=RETRY_STATUSES, backoff_factor=backoff,
        raise_on_status=False, respect_retry_after_header=False)
    for adapter in conn.session.session.adapters.values():
        adapter.max_retries = policy


def _idempotent_retry() -> type:
    """urllib3's Retry, refusing even a connection-error retry for a non-idempotent method."""
    from urllib3.util.retry import Retry

    class IdempotentOnly(Retry):
        def increment(self, method: str | None = None, *args: Any, **kwargs: Any) -> Any:
            if method is not None and method.upper() not in RETRY_METHODS:
                return Retry.increment(self.new(total=0), method, *args, **kwargs)  # raises
            return super().increment(method, *args, **kwargs)

    return IdempotentOnly


def access_error(exc: Exception, cloud: str, clouds_yaml: Path | None) -> Exception:
    """Turn a failure to authenticate as ``cloud`` into an ERROR naming the file, the key and the fix."""
    from keystoneauth1 import exceptions as ks

    from conformance.errors import CloudAccessError

    where = str(clouds_yaml) if clouds_yaml else "clouds.yaml"
    if isinstance(exc, ks.ConnectionError | ks.DiscoveryFailure):
        return CloudAccessError(f"{where}: clouds.{cloud}.auth.auth_url: Keystone is unreachable "
                                f"({exc}). Fix: correct auth_url, or check that Keystone runs and "
                                "this machine can reach it")
    status = getattr(exc, "http_status", None) or getattr(exc, "status_code", None)
    if isinstance(exc, ks.ClientException) and status in (401, 403, 404):
        return CloudAccessError(f"{where}: clouds.{cloud}.auth: Keystone refused the credentials "
                                f"(HTTP {status}: {exc}). Fix: correct the password, token or "
                                "application credential (an expired or revoked one must be renewed)")
    return exc
