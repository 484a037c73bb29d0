"""Turning a v2 `scope` parameter into one resource, and checking it against consent."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.directory import GRAPH, ClientApp, Resource, Tenant, find_resource
from emulator.entra.conditional_access import consent_missing
from emulator.entra.errors import ResourceUnknown, ScopeInvalid, missing_parameter

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
DEFAULT_SCOPE = ".default"


@dataclass(frozen=True)
class ScopeRequest:
    resource: Resource
    resource_uri: str | None  # as the client wrote it; None for bare Graph scopes ("User.Read")
    names: frozenset[str]  # e.g. {"User.Read"} or {".default"}
    oidc: frozenset[str]

    @property
    def audience(self) -> str:
        return self.resource.audience_for(self.resource_uri or self.resource.identifier_uris[0])

    @property
    def is_default(self) -> bool:
        return DEFAULT_SCOPE in self.names

    def qualify(self, name: str) -> str:
        return f"{self.resource_uri}/{name}" if self.resource_uri else name


def parse_scope(raw: str | None, tenant: Tenant) -> ScopeRequest:
    """Find the one resource a request names; Entra refuses a request that names two."""
    items = (raw or "").split()
    if not items:
        raise missing_parameter("scope")
    by_resource: dict[str, tuple[Resource, str | None, set[str]]] = {}
    for item in items:
        if item in OIDC_SCOPES:
            continue
        resource, uri, name = _resolve(item, tenant)
        by_resource.setdefault(resource.app_id, (resource, uri, set()))[2].add(name)
    if len(by_resource) > 1:
        raise ScopeInvalid(
            28000,
            "Provided value for the input parameter scope is not valid because it "
            f"contains more than one resource. Scope {' '.join(items)} is not valid.",
        )
    oidc = frozenset(items) & OIDC_SCOPES
    if not by_resource:  # only OpenID scopes: Entra issues a Graph token for them
        return ScopeRequest(GRAPH, None, frozenset(), oidc)
    resource, uri, names = next(iter(by_resource.values()))
    if DEFAULT_SCOPE in names and len(names) > 1:
        raise _invalid_scope(items)
    return ScopeRequest(resource, uri, frozenset(names), oidc)


def authorize_resource(raw: str, tenant: Tenant) -> Resource:
    """The resource an authorize request's code is for: the first one its scopes name (an
    authorize request may name several), or Graph for OpenID scopes alone."""
    for item in raw.split():
        if item not in OIDC_SCOPES:
            return _resolve(item, tenant)[0]
    return GRAPH


def _resolve(item: str, tenant: Tenant) -> tuple[Resource, str | None, str]:
    if "/" not in item:  # a bare scope name means a Microsoft Graph permission
        return GRAPH, None, item
    uri, _, name = item.rpartition("/")
    uri = uri.rstrip("/") or uri
    resource = find_resource(uri)
    if resource is None:
        raise ResourceUnknown(
            500011,
            f"The resource principal named {uri} was not found in the tenant named "
            f"{tenant.display_name}. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant. "
            "You might have sent your authentication request to the wrong tenant.",
        )
    return resource, uri, name


def _invalid_scope(items: list[str]) -> ScopeInvalid:
    return ScopeInvalid(
        70011,
        "The provided request must include a 'scope' input parameter. The provided "
        f"value for the input parameter 'scope' is not valid. The scope {' '.join(items)} "
        "is not valid.",
    )


def delegated_grant(request: ScopeRequest, client: ClientApp) -> frozenset[str]:
    """The delegated scopes to put in `scp`: everything consented for this client on the
    resource (Entra includes consented scopes that were not asked for). A request for OpenID
    scopes alone gets a Graph token that carries them too."""
    unknown = request.names - request.resource.delegated_scopes - {DEFAULT_SCOPE}
    if unknown:
        raise _invalid_scope(sorted(request.qualify(n) for n in unknown))
    granted = client.delegated_grants.get(request.resource.app_id, frozenset())
    missing = request.names - granted - {DEFAULT_SCOPE}
    if missing or not granted:
        raise consent_missing(client)
    if not request.names:
        return granted | (request.oidc - {"offline_access"})
    return granted


def app_role_grant(request: ScopeRequest, client: ClientApp) -> frozenset[str]:
    """The app roles for a client-credentials token; the scope must be `<resource>/.default`."""
    if request.names != {DEFAULT_SCOPE} or request.resource_uri is None:
        scope = " ".join(sorted(request.qualify(n) for n in request.names)) or "(none)"
        raise ScopeInvalid(
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the resource "
            "identifier (application ID URI).",
        )
    return client.app_role_grants.get(request.resource.app_id, frozenset())


def response_scope(request: ScopeRequest, granted: frozenset[str]) -> str:
    """The `scope` field of a token response: the granted scopes in the form the client used,
    plus `.default` if it asked for that (MSAL caches the token under these names)."""
    names = set(granted) | (request.names & {DEFAULT_SCOPE})
    return " ".join(request.qualify(n) for n in sorted(names))
