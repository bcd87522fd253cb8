// Renders /api/v1/openapi.json with Swagger UI (vendored under
// internal/httpapi/docs/swagger-ui, served as /docs/assets/swagger-ui-*).
// Kept out of the page itself: its Content-Security-Policy allows no inline
// script. "Try it out" calls this same origin (the document's server is "/").
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (typeof window.SwaggerUIBundle !== "function") {
    root.textContent = "The documentation renderer did not load; the raw document is at /api/v1/openapi.json.";
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [window.SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout",
    deepLinking: true,
    filter: true,
    displayOperationId: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    defaultModelExpandDepth: 2,
    docExpansion: "list",
    tryItOutEnabled: false,
    requestSnippetsEnabled: true,
    persistAuthorization: false,
    // No outside validator badge: the page talks to its own origin only.
    validatorUrl: null,
    // Never load another document from the query string (?url=…).
    queryConfigEnabled: false,
  });
})();
