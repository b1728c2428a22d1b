//! The routes: `/metrics`, `/healthz`, `/status` and `/` (the status page).

use async_trait::async_trait;
use bytes::Bytes;
use pong_ports::{HttpHandler, HttpRequest, HttpResponse};

use super::Telemetry;
use super::metrics::content_type;
use super::status::render_page;

#[async_trait]
impl HttpHandler for Telemetry {
    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.method != "GET" && request.method != "HEAD" {
            return HttpResponse::text(405, "only GET and HEAD are served here\n");
        }
        match request.path.as_str() {
            "/metrics" => {
                // Prometheus asks for OpenMetrics when it can read it.
                let openmetrics = request
                    .accept
                    .as_deref()
                    .is_some_and(|a| a.contains("application/openmetrics-text"));
                HttpResponse {
                    status: 200,
                    content_type: content_type(openmetrics),
                    body: Bytes::from(self.render_metrics(openmetrics)),
                    ..HttpResponse::default()
                }
            }
            "/healthz" => {
                let health = self.health();
                if health.is_ok() {
                    HttpResponse::text(200, "ok\n")
                } else {
                    HttpResponse::text(503, format!("{}\n", health.problems.join("; ")))
                }
            }
            // A browser asking for /status gets the page; scripts get JSON.
            "/status" if wants_html(&request) => status_page(self).await,
            "/status" | "/status.json" => {
                let report = self.status().await;
                match serde_json::to_vec_pretty(&report) {
                    Ok(json) => HttpResponse {
                        status: 200,
                        content_type: "application/json",
                        body: Bytes::from(json),
                        ..HttpResponse::default()
                    },
                    Err(error) => {
                        HttpResponse::text(500, format!("cannot write the status: {error}\n"))
                    }
                }
            }
            "/" | "/index.html" => status_page(self).await,
            _ => HttpResponse::text(
                404,
                "not found: this server answers /metrics, /healthz, /status and /\n",
            ),
        }
    }
}

async fn status_page(telemetry: &Telemetry) -> HttpResponse {
    HttpResponse {
        content_type: "text/html; charset=utf-8",
        body: Bytes::from(render_page(&telemetry.status().await)),
        ..HttpResponse::default()
    }
}

/// True if the client reads HTML (a browser), judged by its `Accept` header.
fn wants_html(request: &HttpRequest) -> bool {
    request.accept.as_deref().is_some_and(|a| a.contains("text/html"))
}
