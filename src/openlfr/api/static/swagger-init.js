// Starts Swagger UI on /api/v1/docs. A file of its own because the pages' Content-Security-Policy
// forbids inline script. The page passes the OpenAPI document's address and, for a signed-in
// browser, the session's CSRF token, which "Try it out" must send with every request that changes
// something (bearer-token callers need none).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrf = root.getAttribute("data-csrf-token") || "";
  var safe = ["GET", "HEAD", "OPTIONS"];
  window.openlfrDocs = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the public validator would be an outside host: the CSP refuses it anyway
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: function (request) {
      var method = (request.method || "GET").toUpperCase();
      if (csrf && safe.indexOf(method) < 0) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    },
  });
})();
