// The redirect URI page. MSAL.js v5 answers every interactive and iframe flow through it:
// for a redirect it stores the response and goes back to the page that started the flow,
// whose handleRedirectPromise() completes the sign-in.
globalThis.msalRedirectBridge.broadcastResponseToMainFrame().catch((error) => {
  document.body.textContent = `Sign-in could not complete: ${error.errorCode || error.message}`;
});
