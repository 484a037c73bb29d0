"""A local Entra ID + Microsoft Graph + Azure Resource Manager emulator for OBO development.

from emulator import Emulator, TENANT_ID, API_CLIENT_ID, API_CLIENT_SECRET
with Emulator(state_dir=tmp_path) as emu:
    token = emu.issue_user_token("alice")
"""

from emulator.directory import (
    API_APP_ID_URI,
    API_CERTIFICATE_SUBJECT,
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    API_SCOPE,
    ARM_AUDIENCE,
    DAEMON_CLIENT_ID,
    DAEMON_CLIENT_SECRET,
    GRAPH_APP_ID,
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    MFA_POLICY_ID,
    OTHER_TENANT_DOMAIN,
    OTHER_TENANT_ID,
    SPA_CLIENT_ID,
    SUBSCRIPTIONS,
    TENANT_DOMAIN,
    TENANT_ID,
    TOKEN_EXCHANGE_AUDIENCE,
    USERS,
    WORKLOAD_IDENTITY_ISSUER,
    WORKLOAD_IDENTITY_SUBJECT,
)
from emulator.entra.key_credentials import ClientCertificate
from emulator.entra.redirect_uris import DEFAULT_SPA_REDIRECT_URIS
from emulator.server import Emulator

__all__ = [
    "API_APP_ID_URI",
    "API_CERTIFICATE_SUBJECT",
    "API_CLIENT_ID",
    "API_CLIENT_SECRET",
    "API_SCOPE",
    "ARM_AUDIENCE",
    "DAEMON_CLIENT_ID",
    "DAEMON_CLIENT_SECRET",
    "DEFAULT_SPA_REDIRECT_URIS",
    "GRAPH_APP_ID",
    "MANAGED_IDENTITY_CLIENT_ID",
    "MANAGED_IDENTITY_PRINCIPAL_ID",
    "MFA_POLICY_ID",
    "OTHER_TENANT_DOMAIN",
    "OTHER_TENANT_ID",
    "SPA_CLIENT_ID",
    "SUBSCRIPTIONS",
    "TENANT_DOMAIN",
    "TENANT_ID",
    "TOKEN_EXCHANGE_AUDIENCE",
    "USERS",
    "WORKLOAD_IDENTITY_ISSUER",
    "WORKLOAD_IDENTITY_SUBJECT",
    "ClientCertificate",
    "Emulator",
]
