"""Real ``keystonemiddleware.auth_token`` in front of Nova and Placement.

Nova's paste pipeline (``api-paste.ini``, ``keystone`` flavour) and
Placement's ``deploy()`` both build the real auth_token middleware.  Each
gets the ``[keystone_authtoken]`` settings of its own service user as paste
options plus a private, empty ``ConfigOpts`` (``oslo_config_config``), so
nothing lands in Nova's global configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any


@dataclasses.dataclass(frozen=True)
class KeystoneSettings:
    """Where Keystone is and how the service users authenticate."""

    url: str
    password: str
    region: str = "RegionOne"

    def authtoken_options(self, user: str) -> dict[str, str]:
        """``[keystone_authtoken]`` options for service user ``user``."""
        return {
            "www_authenticate_uri": self.url,
            "auth_url": self.url,
            "auth_type": "password",
            "username": user,
            "password": self.password,
            "project_name": "service",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "region_name": self.region,
            "interface": "public",
            "service_token_roles_required": "true",
            "token_cache_time": "300",
        }


def _private_conf() -> Any:
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf([], project="keystonemiddleware", default_config_files=[])
    return conf


def _with_settings(factory: Callable[..., Any], user: str,
                   settings: KeystoneSettings) -> Callable[..., Any]:
    def filter_factory(global_conf: dict[str, Any], **local_conf: Any) -> Any:
        local_conf.update(settings.authtoken_options(user))
        local_conf["oslo_config_config"] = _private_conf()
        return factory(global_conf, **local_conf)

    return filter_factory


@contextlib.contextmanager
def nova_authtoken(settings: KeystoneSettings) -> Iterator[None]:
    """While active, paste builds Nova's auth_token filter for user ``nova``."""
    import keystonemiddleware.auth_token as auth_token

    real = auth_token.filter_factory
    auth_token.filter_factory = _with_settings(real, "nova", settings)
    try:
        yield
    finally:
        auth_token.filter_factory = real


def placement_app(conf: Any, settings: KeystoneSettings) -> Any:
    """A Placement WSGI stack with auth_token, on the fixture's ConfigOpts.

    The in-process client Nova uses keeps talking to the fixture's own
    (noauth2) application; this second stack serves the public port.
    """
    import placement.auth
    from placement import deploy

    real = placement.auth.filter_factory

    def factory(global_conf: dict[str, Any], **local_conf: Any) -> Any:
        local_conf.pop("oslo_config_config", None)
        return _with_settings(real, "placement", settings)(global_conf, **local_conf)

    placement.auth.filter_factory = factory
    conf.set_override("auth_strategy", "keystone", group="api")
    try:
        return deploy.deploy(conf)
    finally:
        conf.set_override("auth_strategy", "noauth2", group="api")
        placement.auth.filter_factory = real
