// A single-page app that signs the user in with MSAL.js and calls the On-Behalf-Of API.
// How it reacts to the API's refusals is the point: a claims challenge (MFA) sends the user to
// Entra ID with those claims, missing consent is explained, throttling waits and retries once.

import { ApiError, ApiUnreachable, getJson } from "./api.js";

const msal = globalThis.msal; // vendor/msal-browser.min.js, loaded before this module

const PANELS = [
  { path: "/api/me", render: renderProfile, label: "profile" },
  { path: "/api/users?$top=5", render: renderUsers, label: "users" },
  { path: "/api/subscriptions", render: renderSubscriptions, label: "subscriptions" },
];
// Set just before a step-up sign-in, so the same challenge right after it is not looped on.
const STEP_UP_KEY = "obo-sample.step-up-claims";
// The activity list, kept across the trips to Entra ID so the whole story stays visible.
const ACTIVITY_KEY = "obo-sample.activity";
const MAX_ACTIVITY = 50;

const element = (id) => document.getElementById(id);
let config;
let pca;
let loads = 0;

/** Thrown once the browser is navigating to Entra ID: nothing more to do on this page. */
class Navigating extends Error {}

async function main() {
  config = await (await fetch("config.json", { cache: "no-store" })).json();
  pca = new msal.PublicClientApplication(msalConfiguration(config));
  await pca.initialize();
  element("sign-in").addEventListener("click", signIn);
  element("sign-out").addEventListener("click", signOut);
  element("reload").addEventListener("click", () => loadPanels());
  renderActivity();

  let result = null;
  try {
    result = await pca.handleRedirectPromise();
  } catch (error) {
    showError("Sign-in failed", describeMsalError(error));
  }
  if (result?.state === "step-up") log("Signed in again with the claims the API asked for");
  else if (result) log(`Signed in as ${result.account.username}`);
  const account = result?.account ?? pca.getActiveAccount() ?? pca.getAllAccounts()[0];
  if (!account) {
    showSignedOut();
    return;
  }
  pca.setActiveAccount(account);
  showSignedIn(account);
  await loadPanels();
}

function msalConfiguration({ clientId, authority, knownAuthorities }) {
  const bridge = new URL("redirect.html", window.location.href).href;
  return {
    auth: {
      clientId,
      authority,
      knownAuthorities, // an authority MSAL.js does not know must be listed to be trusted
      redirectUri: bridge,
      postLogoutRedirectUri: bridge,
    },
    cache: { cacheLocation: "sessionStorage" },
    system: {
      loggerOptions: {
        logLevel: msal.LogLevel.Warning,
        loggerCallback: (level, message) => console.warn(message),
      },
    },
  };
}

function signIn() {
  return pca.loginRedirect({ scopes: config.apiScopes });
}

function signOut() {
  sessionStorage.removeItem(STEP_UP_KEY);
  sessionStorage.removeItem(ACTIVITY_KEY);
  return pca.logoutRedirect({ account: pca.getActiveAccount() });
}

/** Call each route in turn and show what it answered. */
async function loadPanels() {
  loads += 1;
  clearPanels();
  setStatus("Loading…", "loading");
  // One wait for Retry-After per round: a busy API does not make the user wait per panel.
  const round = { retriesLeft: 1 };
  let failures = 0;
  try {
    for (const panel of PANELS) {
      if (!(await loadPanel(panel, round))) failures += 1;
    }
  } catch (error) {
    if (error instanceof Navigating) return;
    if (!(error instanceof ApiError && error.consentRequired)) throw error;
    showConsentRequired(error);
    setStatus("The API cannot act for you until an administrator grants consent", "error");
    return;
  }
  sessionStorage.removeItem(STEP_UP_KEY);
  if (failures) setStatus(`Loaded ${PANELS.length - failures} of ${PANELS.length}`, "error");
  else setStatus(`Signed in as ${pca.getActiveAccount().name}`, "ready");
}

/** Fetch and render one panel; false if it failed. Consent and step-up end the whole load. */
async function loadPanel({ path, render, label }, round) {
  try {
    render(await callApi(path, round));
    log(`GET ${path}: 200`);
    return true;
  } catch (error) {
    if (error instanceof Navigating) throw error;
    if (error instanceof ApiUnreachable) {
      showError(`Could not load the ${label}`, `No answer from ${config.apiUrl}: is it running `
        + `and does its CORS_ALLOWED_ORIGINS include ${window.location.origin}?`);
      return false;
    }
    if (!(error instanceof ApiError)) {
      showError(`Could not load the ${label}`, describeMsalError(error));
      return false;
    }
    log(`GET ${path}: ${error.status} ${error.error}`);
    if (error.status === 401 && error.error === "interaction_required") await stepUp(error);
    if (error.consentRequired) throw error;
    showError(`Could not load the ${label}`, `${error.status} ${error.error}: ${error.description}`);
    return false;
  }
}

/** The route's JSON; a throttled or unavailable API is retried once after its Retry-After. */
async function callApi(path, round) {
  try {
    return await getJson(config.apiUrl, path, await accessToken());
  } catch (error) {
    const delay = error instanceof ApiError ? error.retryDelay : null;
    if (delay === null || round.retriesLeft === 0) throw error;
    round.retriesLeft -= 1;
    log(`GET ${path}: ${error.status} ${error.error}, retrying in ${delay} s`);
    await countdown(delay);
    return getJson(config.apiUrl, path, await accessToken());
  }
}

/** An access token for the API: from the cache, renewed with the refresh token when due. */
async function accessToken() {
  const request = { scopes: config.apiScopes, account: pca.getActiveAccount() };
  try {
    return (await pca.acquireTokenSilent(request)).accessToken;
  } catch (error) {
    if (!(error instanceof msal.InteractionRequiredAuthError)) throw error;
    log(`Signing in again: ${error.errorCode}`);
    await pca.acquireTokenRedirect(request);
    throw new Navigating();
  }
}

/**
 * A claims challenge: Conditional Access wants more (MFA). Sign in again asking Entra ID for
 * exactly those claims; back on this page, the panels load again with the new token.
 */
async function stepUp(error) {
  const claims = error.claims;
  if (sessionStorage.getItem(STEP_UP_KEY) === (claims ?? "")) {
    return; // tried once already: show the refusal instead of looping through Entra ID
  }
  sessionStorage.setItem(STEP_UP_KEY, claims ?? "");
  log(claims ? `Claims challenge from the API: ${claims}` : "The API asks for a new sign-in");
  setStatus("Additional verification is needed; signing in again…", "step-up");
  await pca.acquireTokenRedirect({
    scopes: config.apiScopes,
    account: pca.getActiveAccount(),
    claims: claims ?? undefined,
    state: "step-up",
  });
  throw new Navigating();
}

async function countdown(seconds) {
  for (let left = seconds; left > 0; left -= 1) {
    setStatus(`The API is busy; retrying in ${left} s`, "waiting");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  setStatus("Retrying…", "loading");
}

// -- what the user sees ------------------------------------------------------------------

function showSignedOut() {
  element("sign-in").hidden = false;
  element("sign-out").hidden = element("reload").hidden = true;
  element("account").textContent = "";
  setStatus("Not signed in", "signed-out");
}

function showSignedIn(account) {
  element("sign-in").hidden = true;
  element("sign-out").hidden = element("reload").hidden = false;
  element("account").textContent = `${account.name} (${account.username})`;
}

function setStatus(text, state) {
  const status = element("status");
  status.textContent = text;
  status.dataset.state = state;
  status.dataset.loads = String(loads);
}

function log(text) {
  const entries = [...storedActivity(), text].slice(-MAX_ACTIVITY);
  sessionStorage.setItem(ACTIVITY_KEY, JSON.stringify(entries));
  renderActivity();
}

function storedActivity() {
  try {
    const entries = JSON.parse(sessionStorage.getItem(ACTIVITY_KEY) ?? "[]");
    return Array.isArray(entries) ? entries.map(String) : [];
  } catch {
    return [];
  }
}

function renderActivity() {
  element("activity").replaceChildren(...storedActivity().map(listItem));
}

function clearPanels() {
  for (const id of ["profile", "users", "subscriptions", "error"]) element(id).replaceChildren();
  element("error").hidden = true;
}

function showError(title, detail) {
  const box = element("error");
  box.append(paragraph(title, "title"), paragraph(detail));
  box.hidden = false;
}

function showConsentRequired(error) {
  const box = element("error");
  const steps = document.createElement("ol");
  steps.append(
    listItem("Microsoft Entra admin center → App registrations → the API → API permissions → "
      + "Grant admin consent for the tenant (Microsoft Graph User.Read and "
      + "User.ReadBasic.All, Azure Service Management user_impersonation); or"),
    listItem(`add this app's client ID (${config.clientId}) to the API's `
      + "knownClientApplications in its manifest, and let users sign in to this app with the "
      + `scope ${config.apiScopes[0].replace(/\/[^/]*$/, "/.default")}, which asks for consent `
      + "to the API and its permissions at once."),
  );
  box.replaceChildren(
    paragraph("Administrator consent required", "title"),
    paragraph("The API may not call Microsoft Graph and Azure Resource Manager for you yet: "
      + "nobody has consented to the permissions it needs. An administrator of your tenant "
      + "can fix this:"),
    steps,
    paragraph(`The API answered ${error.status} ${error.error}: ${error.description}`, "detail"),
  );
  box.hidden = false;
}

function renderProfile(me) {
  const list = document.createElement("dl");
  for (const [term, value] of [["Name", me.displayName], ["Job title", me.jobTitle],
    ["Email", me.mail ?? me.userPrincipalName], ["Office", me.officeLocation]]) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value ?? "—";
    list.append(dt, dd);
  }
  element("profile").replaceChildren(list);
}

function renderUsers({ value }) {
  element("users").replaceChildren(
    ...value.map((user) => listItem(`${user.displayName} <${user.mail ?? user.userPrincipalName}>`)));
}

function renderSubscriptions({ value }) {
  element("subscriptions").replaceChildren(
    ...value.map((sub) => listItem(`${sub.displayName} (${sub.subscriptionId}) ${sub.state}`)));
}

function listItem(text) {
  const item = document.createElement("li");
  item.textContent = text;
  return item;
}

function paragraph(text, className) {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  return p;
}

function describeMsalError(error) {
  // MSAL.js v5 messages are links to its docs; the code and the server's words say more.
  const parts = [error.errorCode, error.subError, error.errorMessage].filter(Boolean);
  return parts.length ? parts.join(": ") : String(error);
}

main().catch((error) => {
  showError("The app could not start", describeMsalError(error));
  setStatus("Error", "error");
});
