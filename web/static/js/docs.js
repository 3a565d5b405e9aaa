// Swagger UI on the vendored bundle; "Authorize" takes an API key for the Bearer scheme.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui", persistAuthorization: true });
