"""The ``spec`` of an Environment manifest: the provider's environment create fields.

Shapes follow ``provider-wire.md`` sections 4.2 and 5.4, including the provider rule that
packages under limited networking need ``allow_package_managers: true``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from .fields import Metadata, NonEmptyStr, SpecModel, checked_by, fail
from .hosts import ENVIRONMENT_HOST_PATTERN, environment_host_problem

PACKAGE_MANAGERS = ("pip", "npm", "apt", "cargo", "gem", "go")
#: the provider's limits (the local provider's ``schemas.py``), refused at validate rather
#: than by a 400 at apply after the resources before this one were changed
MAX_NAME = 256
MAX_DESCRIPTION = 2048
MAX_HOST = 253
MAX_HOSTS = 256
MAX_PACKAGE = 512
MAX_PACKAGES = 256
PackageList = Annotated[
    list[Annotated[NonEmptyStr, Field(max_length=MAX_PACKAGE)]], Field(max_length=MAX_PACKAGES)
]


class UnrestrictedNetworking(SpecModel):
    """Outbound network access to any host."""

    type: Literal["unrestricted"]


class LimitedNetworking(SpecModel):
    """Outbound network access only to the listed hosts (and optionally MCP servers and package registries)."""

    type: Literal["limited"]
    allowed_hosts: (
        Annotated[
            list[
                Annotated[
                    NonEmptyStr,
                    Field(max_length=MAX_HOST),
                    checked_by(environment_host_problem),
                    Field(json_schema_extra={"pattern": ENVIRONMENT_HOST_PATTERN}),
                ]
            ],
            Field(max_length=MAX_HOSTS),
        ]
        | None
    ) = Field(
        default=None, description="Hostnames the container may reach (api.example.com): no URL."
    )
    allow_mcp_servers: bool | None = Field(default=None, description="Default false.")
    allow_package_managers: bool | None = Field(
        default=None, description="Default false; must be true when packages are listed."
    )


Networking = Annotated[UnrestrictedNetworking | LimitedNetworking, Field(discriminator="type")]


class Packages(SpecModel):
    """Packages installed into the container, per package manager (pkg==1.0 pins a version)."""

    type: Literal["packages"] | None = None
    pip: PackageList | None = None
    npm: PackageList | None = None
    apt: PackageList | None = None
    cargo: PackageList | None = None
    gem: PackageList | None = None
    go: PackageList | None = None

    def any_listed(self) -> bool:
        """True when at least one manager lists a package."""
        return any(getattr(self, manager) for manager in PACKAGE_MANAGERS)


def _package_managers_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema says what ``_package_managers_reachable`` checks, for editors:
    packages listed under limited networking need ``allow_package_managers: true``."""
    listed = [
        {"required": [m], "properties": {m: {"type": "array", "minItems": 1}}}
        for m in PACKAGE_MANAGERS
    ]
    schema["if"] = {
        "required": ["networking", "packages"],
        "properties": {
            "networking": {"required": ["type"], "properties": {"type": {"const": "limited"}}},
            "packages": {"type": "object", "anyOf": listed},
        },
    }
    schema["then"] = {
        "properties": {
            "networking": {
                "required": ["allow_package_managers"],
                "properties": {"allow_package_managers": {"const": True}},
            }
        }
    }


#: the error of packages listed under limited networking without allow_package_managers
PACKAGE_MANAGERS_UNREACHABLE = (
    "packages under limited networking require allow_package_managers: true; "
    "set it under networking or remove the packages"
)


class CloudConfig(SpecModel):
    """A container run by the provider."""

    model_config = ConfigDict(json_schema_extra=_package_managers_schema)

    type: Literal["cloud"]
    networking: Networking | None = None
    packages: Packages | None = None

    @model_validator(mode="after")
    def _package_managers_reachable(self) -> CloudConfig:
        net = self.networking
        if (
            isinstance(net, LimitedNetworking)
            and self.packages is not None
            and self.packages.any_listed()
            and net.allow_package_managers is not True
        ):
            fail(
                PACKAGE_MANAGERS_UNREACHABLE,
                "networking",
                "allow_package_managers",
                point="key",
            )
        return self


class SelfHostedConfig(SpecModel):
    """Sessions run on your own workers (no other settings)."""

    type: Literal["self_hosted"]


EnvironmentConfig = Annotated[CloudConfig | SelfHostedConfig, Field(discriminator="type")]


class EnvironmentSpec(SpecModel):
    """Desired state of an environment: the create fields of POST /v1/environments."""

    name: Annotated[NonEmptyStr, Field(max_length=MAX_NAME)] | None = Field(
        default=None,
        description="Remote name (unique among live environments); defaults to the document name.",
    )
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] | None = None
    metadata: Metadata | None = None
    scope: Literal["organization", "account"] | None = None
    config: EnvironmentConfig | None = None
