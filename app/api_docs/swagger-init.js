// Swagger UI for this API: the document at openapi.json; paste an access token under
// "Authorize" (bearer) to try the routes. Loaded as a file so that the page's
// Content-Security-Policy can forbid inline scripts.
"use strict";

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The public validator badge would be a request to another site.
    validatorUrl: null,
    // A pasted token is kept in memory only, never in the browser's storage.
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
