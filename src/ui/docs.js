// Swagger UI on the node that served /docs: the document is this node's /openapi.json, whose
// `servers` name this node, so "Try it out" calls it. No validator badge: it would fetch an
// image from the internet, which an air-gapped cluster does not have.
'use strict';
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
});
