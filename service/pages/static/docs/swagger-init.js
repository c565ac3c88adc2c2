// Swagger UI for this service's own OpenAPI document. Configuration comes from the page's data attributes:
// the docs pages allow scripts from this origin only, never an inline one.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // no request to the public validator
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
