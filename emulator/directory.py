"""The emulator's fixed directory: tenants, app registrations, users and subscriptions.

Everything here is plain data so that tests, demos and the emulator agree on one set of IDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

TENANT_ID = "7e57c0de-0000-4000-8000-000000000001"
TENANT_DOMAIN = "contoso.test"
OTHER_TENANT_ID = "7e57c0de-0000-4000-8000-000000000002"
OTHER_TENANT_DOMAIN = "fabrikam.test"

API_CLIENT_ID = "e3a1c0de-0000-4000-8000-00000000a001"
API_CLIENT_SECRET = "emulator-secret-not-for-production"  # noqa: S105 - a published demo value
API_APP_ID_URI = f"api://{API_CLIENT_ID}"
API_SCOPE = "access_as_user"
SPA_CLIENT_ID = "e3a1c0de-0000-4000-8000-00000000a002"
DAEMON_CLIENT_ID = "e3a1c0de-0000-4000-8000-00000000a003"
DAEMON_CLIENT_SECRET = "emulator-daemon-secret-not-for-production"  # noqa: S105 - demo value

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
ARM_AUDIENCE = "https://management.azure.com"
# The audience of tokens used as federated client assertions, and the app id Entra puts in the
# aud claim of its own such tokens (a managed identity's).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - an audience
TOKEN_EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"  # noqa: S105 - an app id

# What the API's registration trusts besides its secret. Certificates registered by thumbprint
# are kept at run time (emulator.entra.key_credentials); these are fixed:
# subject name + issuer: a certificate with this subject, chained to the emulator's client CA;
API_CERTIFICATE_SUBJECT = "CN=obo-api.contoso.test"
# a Kubernetes service account token of the emulated AKS cluster (workload identity);
WORKLOAD_IDENTITY_ISSUER = "https://oidc.aks.contoso.test/7e57c0de-0000-4000-8000-00000000e001/"
WORKLOAD_IDENTITY_SUBJECT = "system:serviceaccount:obo:obo-api"
# a token of the user-assigned managed identity the API's compute runs as.
MANAGED_IDENTITY_CLIENT_ID = "e3a1c0de-0000-4000-8000-00000000a004"
MANAGED_IDENTITY_PRINCIPAL_ID = "e3a1c0de-0000-4000-8000-00000000d004"

# The conditional-access policy id Entra names in the MFA claims challenges (dave, judy).
MFA_POLICY_ID = "e3a1c0de-0000-4000-8000-00000000f001"

# How a user fares when a token for Graph or ARM is requested on their behalf (OBO, refresh).
Behaviour = Literal[
    "normal",
    "mfa_required",  # Conditional Access: MFA; modern refusal (invalid_grant + claims)
    "mfa_required_legacy",  # the same policy, refused the older way (interaction_required)
    "per_user_mfa",  # MFA enforced on every interactive sign-in; refusal without claims
    "blocked",  # Conditional Access blocks token issuance
    "password_expired",
    "consent_required",
    "throttled",
]
MFA_BEHAVIOURS: frozenset[Behaviour] = frozenset(
    {"mfa_required", "mfa_required_legacy", "per_user_mfa"}
)
THROTTLE_RETRY_AFTER = 7


@dataclass(frozen=True)
class Tenant:
    id: str
    domain: str
    display_name: str
    region_scope: str = "EU"


@dataclass(frozen=True)
class Resource:
    """An API that tokens can be issued for (Graph, ARM, the middle-tier API)."""

    app_id: str
    display_name: str
    identifier_uris: tuple[str, ...]
    delegated_scopes: frozenset[str]
    app_roles: frozenset[str] = frozenset()
    # None: the aud claim is the identifier URI the client asked for (ARM's behaviour).
    audience: str | None = None

    def audience_for(self, requested_uri: str) -> str:
        return self.audience or requested_uri.rstrip("/")


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential of an app registration: Entra takes, as the app's client
    assertion, a token that `issuer` issued about `subject` for one of `audiences`."""

    name: str
    # None: this tenant's own issuer (a managed identity's token), on whichever host the
    # emulator answers; Entra's is https://login.microsoftonline.com/{tenant}/v2.0.
    issuer: str | None
    subject: str
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)


@dataclass(frozen=True)
class ManagedIdentity:
    """A user-assigned managed identity: a service principal whose tokens the compute it is
    assigned to gets from its local endpoint, without a credential."""

    client_id: str
    principal_id: str  # the object id: the sub and oid of its tokens
    display_name: str
    resource_id: str
    tenant_id: str = TENANT_ID


@dataclass(frozen=True)
class ClientApp:
    app_id: str
    display_name: str
    secret: str | None  # None: a public client (SPA, native)
    service_principal_id: str
    # Admin consent already granted: resource app id -> delegated scopes / app roles.
    delegated_grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    app_role_grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Registered on the "Single-page application" platform: its redirect URIs are of type
    # `spa` (see emulator.entra.redirect_uris), and its codes are redeemed cross-origin.
    single_page_app: bool = False
    federated_credentials: tuple[FederatedCredential, ...] = ()
    # Subject names of certificates trusted when they chain to the emulator's client CA
    # (Entra's trustedCertificateSubjects: subject name + issuer authentication).
    trusted_certificate_subjects: frozenset[str] = frozenset()

    @property
    def is_confidential(self) -> bool:
        return self.secret is not None


@dataclass(frozen=True)
class User:
    username: str
    id: str
    display_name: str
    given_name: str
    surname: str
    job_title: str
    office_location: str
    mobile_phone: str | None
    business_phones: tuple[str, ...]
    preferred_language: str
    tenant_id: str = TENANT_ID
    behaviour: Behaviour = "normal"
    app_roles: frozenset[str] = frozenset()  # roles on the middle-tier API

    @property
    def upn(self) -> str:
        return f"{self.username}@{TENANTS[self.tenant_id].domain}"

    @property
    def mail(self) -> str:
        return self.upn

    def graph_properties(self) -> dict[str, Any]:
        """The user's default property set, named and ordered as Graph v1.0 returns it."""
        return {
            "businessPhones": list(self.business_phones),
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": self.mobile_phone,
            "officeLocation": self.office_location,
            "preferredLanguage": self.preferred_language,
            "surname": self.surname,
            "userPrincipalName": self.upn,
            "id": self.id,
        }


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    display_name: str
    tenant_id: str = TENANT_ID
    quota_id: str = "PayAsYouGo_2014-09-01"

    def arm_properties(self) -> dict[str, Any]:
        """The subscription as ARM's GET /subscriptions (api-version 2022-12-01) lists it."""
        return {
            "id": f"/subscriptions/{self.subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
            "displayName": self.display_name,
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": self.quota_id,
                "spendingLimit": "Off",
            },
        }


TENANTS: Mapping[str, Tenant] = MappingProxyType(
    {
        TENANT_ID: Tenant(TENANT_ID, TENANT_DOMAIN, "Contoso (emulated)"),
        OTHER_TENANT_ID: Tenant(OTHER_TENANT_ID, OTHER_TENANT_DOMAIN, "Fabrikam (emulated)"),
    }
)

# Identifier URIs include the national clouds' (US Government, China), so the emulator can
# pose as one of them (Emulator(server_names=...)); in Azure each cloud knows only its own.
GRAPH = Resource(
    app_id=GRAPH_APP_ID,
    display_name="Microsoft Graph",
    identifier_uris=(
        "https://graph.microsoft.com",
        GRAPH_APP_ID,
        "https://graph.microsoft.us",
        "https://dod-graph.microsoft.us",
        "https://microsoftgraph.chinacloudapi.cn",
    ),
    delegated_scopes=frozenset(
        {"User.Read", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All", "Mail.Read"}
    ),
    app_roles=frozenset({"User.Read.All", "Directory.Read.All"}),
    audience=GRAPH_APP_ID,
)
ARM = Resource(
    app_id=ARM_APP_ID,
    display_name="Windows Azure Service Management API",
    identifier_uris=(
        "https://management.azure.com",
        "https://management.core.windows.net",
        "https://management.usgovcloudapi.net",
        "https://management.core.usgovcloudapi.net",
        "https://management.chinacloudapi.cn",
        "https://management.core.chinacloudapi.cn",
    ),
    delegated_scopes=frozenset({"user_impersonation"}),
)
API = Resource(
    app_id=API_CLIENT_ID,
    display_name="Middle-tier API",
    identifier_uris=(API_APP_ID_URI, API_CLIENT_ID),
    delegated_scopes=frozenset({API_SCOPE}),
    app_roles=frozenset({"Reports.Read.All", "Reports.Write.All"}),
    audience=API_CLIENT_ID,
)
TOKEN_EXCHANGE = Resource(
    app_id=TOKEN_EXCHANGE_APP_ID,
    display_name="AAD Token Exchange Endpoint",
    identifier_uris=(TOKEN_EXCHANGE_AUDIENCE, TOKEN_EXCHANGE_APP_ID),
    delegated_scopes=frozenset(),
    audience=TOKEN_EXCHANGE_APP_ID,
)
RESOURCES: tuple[Resource, ...] = (GRAPH, ARM, API, TOKEN_EXCHANGE)

MANAGED_IDENTITIES: Mapping[str, ManagedIdentity] = MappingProxyType(
    {
        MANAGED_IDENTITY_CLIENT_ID: ManagedIdentity(
            client_id=MANAGED_IDENTITY_CLIENT_ID,
            principal_id=MANAGED_IDENTITY_PRINCIPAL_ID,
            display_name="obo-api-identity",
            resource_id="/subscriptions/e3a1c0de-0000-4000-8000-00000000c001/resourcegroups/obo"
            "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
            "/obo-api-identity",
        ),
    }
)

CLIENTS: Mapping[str, ClientApp] = MappingProxyType(
    {
        API_CLIENT_ID: ClientApp(
            app_id=API_CLIENT_ID,
            display_name="Middle-tier API",
            secret=API_CLIENT_SECRET,
            service_principal_id="e3a1c0de-0000-4000-8000-00000000d001",
            delegated_grants={
                GRAPH_APP_ID: frozenset({"User.Read", "User.ReadBasic.All"}),
                ARM_APP_ID: frozenset({"user_impersonation"}),
            },
            app_role_grants={GRAPH_APP_ID: frozenset({"User.Read.All"})},
            federated_credentials=(
                FederatedCredential(
                    "aks-workload-identity", WORKLOAD_IDENTITY_ISSUER, WORKLOAD_IDENTITY_SUBJECT
                ),
                FederatedCredential("managed-identity", None, MANAGED_IDENTITY_PRINCIPAL_ID),
            ),
            trusted_certificate_subjects=frozenset({API_CERTIFICATE_SUBJECT}),
        ),
        SPA_CLIENT_ID: ClientApp(
            app_id=SPA_CLIENT_ID,
            display_name="Frontend SPA",
            secret=None,
            service_principal_id="e3a1c0de-0000-4000-8000-00000000d002",
            delegated_grants={
                API_CLIENT_ID: frozenset({API_SCOPE}),
                GRAPH_APP_ID: frozenset({"User.Read"}),
            },
            single_page_app=True,
        ),
        DAEMON_CLIENT_ID: ClientApp(
            app_id=DAEMON_CLIENT_ID,
            display_name="Reporting daemon",
            secret=DAEMON_CLIENT_SECRET,
            service_principal_id="e3a1c0de-0000-4000-8000-00000000d003",
            app_role_grants={API_CLIENT_ID: frozenset({"Reports.Read.All"})},
        ),
    }
)


def _user(username: str, number: int, given: str, surname: str, job: str, **kw: Any) -> User:
    return User(
        username=username,
        id=f"e3a1c0de-0000-4000-8000-00000000b{number:03d}",
        display_name=f"{given} {surname}",
        given_name=given,
        surname=surname,
        job_title=job,
        office_location=kw.pop("office", "Building 1/1001"),
        mobile_phone=kw.pop("mobile", None),
        business_phones=(f"+1 425 555 0{number:03d}",),
        preferred_language=kw.pop("language", "en-US"),
        **kw,
    )


USERS: Mapping[str, User] = MappingProxyType(
    {
        u.username: u
        for u in (
            _user(
                "alice",
                1,
                "Alice",
                "Anders",
                "Engineering Manager",
                mobile="+1 425 555 1001",
                app_roles=frozenset({"Reports.Read.All"}),
            ),
            _user("bob", 2, "Bob", "Brown", "Software Engineer"),
            _user("carol", 3, "Carol", "Chen", "Product Manager", office="Building 2/2002"),
            _user("dave", 4, "Dave", "Diaz", "Finance Analyst", behaviour="mfa_required"),
            _user("erin", 5, "Erin", "Evans", "Designer", behaviour="consent_required"),
            _user("frank", 6, "Frank", "Fischer", "Support Engineer", behaviour="throttled"),
            _user("grace", 7, "Grace", "Garcia", "Data Scientist", language="es-ES"),
            _user("heidi", 8, "Heidi", "Huber", "Sales Lead", language="de-DE"),
            _user("ivan", 9, "Ivan", "Ivanov", "Consultant", tenant_id=OTHER_TENANT_ID),
            _user("judy", 10, "Judy", "Jensen", "Auditor", behaviour="mfa_required_legacy"),
            _user("kevin", 11, "Kevin", "Kowalski", "Administrator", behaviour="per_user_mfa"),
            _user("laura", 12, "Laura", "Lopez", "Contractor", behaviour="blocked"),
            _user("mike", 13, "Mike", "Meyer", "Accountant", behaviour="password_expired"),
        )
    }
)

BEHAVIOUR_DESCRIPTIONS: Mapping[Behaviour, str] = MappingProxyType(
    {
        "normal": "OBO succeeds",
        "mfa_required": "OBO fails unless the token came from an MFA sign-in: invalid_grant "
        "(AADSTS50076, basic_action, MFA claims challenge)",
        "mfa_required_legacy": "OBO fails unless the token came from an MFA sign-in: "
        "interaction_required (AADSTS50076, MFA claims challenge)",
        "per_user_mfa": "OBO fails unless the token came from an MFA sign-in: invalid_grant "
        "(AADSTS50076, basic_action, no claims); every sign-in asks for MFA",
        "blocked": "OBO fails: invalid_grant (AADSTS53003, message_only, blocked by "
        "Conditional Access)",
        "password_expired": "OBO fails: invalid_grant (AADSTS50055, user_password_expired)",
        "consent_required": "OBO fails: invalid_grant (AADSTS65001, consent_required)",
        "throttled": f"OBO fails: HTTP 429, Retry-After {THROTTLE_RETRY_AFTER}",
    }
)

SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("e3a1c0de-0000-4000-8000-00000000c001", "Contoso Production"),
    Subscription("e3a1c0de-0000-4000-8000-00000000c002", "Contoso Staging"),
    Subscription(
        "e3a1c0de-0000-4000-8000-00000000c003", "Contoso Development", quota_id="MSDN_2014-09-01"
    ),
    Subscription("e3a1c0de-0000-4000-8000-00000000c004", "Contoso Shared Services"),
    Subscription(
        "e3a1c0de-0000-4000-8000-00000000c005", "Contoso Sandbox", quota_id="FreeTrial_2014-09-01"
    ),
    Subscription(
        "e3a1c0de-0000-4000-8000-00000000c101", "Fabrikam Production", tenant_id=OTHER_TENANT_ID
    ),
)


def find_tenant(name: str) -> Tenant | None:
    """Look a tenant up by GUID or verified domain, as Entra's /{tenant} path segment does."""
    lowered = name.lower()
    return next((t for t in TENANTS.values() if lowered in (t.id, t.domain)), None)


def find_user(name: str, tenant_id: str | None = None) -> User | None:
    """Look a user up by short name, UPN or object id, optionally within one tenant."""
    lowered = name.lower()
    for user in USERS.values():
        if lowered in (user.username, user.upn.lower(), user.id):
            return user if tenant_id in (None, user.tenant_id) else None
    return None


def find_resource(identifier: str) -> Resource | None:
    """Look a resource up by app id or identifier URI (case and trailing slash ignored)."""
    wanted = identifier.rstrip("/").lower()
    for resource in RESOURCES:
        if wanted in (uri.lower() for uri in resource.identifier_uris):
            return resource
    return None


def users_in(tenant_id: str) -> list[User]:
    return [u for u in USERS.values() if u.tenant_id == tenant_id]


def subscriptions_in(tenant_id: str) -> list[Subscription]:
    return [s for s in SUBSCRIPTIONS if s.tenant_id == tenant_id]
