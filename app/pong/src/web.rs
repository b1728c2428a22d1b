//! The browser frontend, served on the game's own port: `GET /` is the page, its script and
//! WebAssembly are static files beside it, and the WebSocket upgrade happens on the same
//! port, so `pong server` then `http://HOST:7878/` is the whole set-up.
//!
//! The files are `app/web/dist/`, built from `app/web` by `scripts/build-web.sh` (CI checks
//! they are what the source builds) and embedded in the binary, so there is nothing to
//! install or copy beside it. The script and the module are served under a path named by
//! their content (`/assets/<hash>/…`), cached for a year as immutable; the page itself is
//! revalidated every time (`no-cache` with an `ETag`), so a new server version reaches every
//! browser at its next load. Each file is compressed once, on first request, with gzip for
//! the clients that read it. Any other path goes to the operators' endpoints.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use pong_domain::hash::Fnv64;
use pong_ports::{HttpHandler, HttpRequest, HttpResponse};

const INDEX: &str = include_str!("../../web/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../web/dist/pong_web.js");
const MODULE: &[u8] = include_bytes!("../../web/dist/pong_web_bg.wasm");

/// Where the page finds its script; replaced by the content-named directory.
const ASSETS_PLACEHOLDER: &str = "./ASSETS/";

/// One file as served.
#[derive(Debug)]
struct File {
    content_type: &'static str,
    body: Bytes,
    gzip: Option<Bytes>,
    etag: String,
    cache_control: &'static str,
}

impl File {
    fn new(content_type: &'static str, body: Bytes, cache_control: &'static str) -> File {
        let mut hash = Fnv64::new();
        hash.bytes(&body);
        let etag = format!("\"{:016x}\"", hash.finish());
        // Compressed only where it pays (the module shrinks to about a third).
        let gzip = gzip(&body).filter(|z| z.len() < body.len() * 9 / 10);
        File { content_type, body, gzip, etag, cache_control }
    }

    fn response(&self, request: &HttpRequest) -> HttpResponse {
        let fresh = request
            .if_none_match
            .as_deref()
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == self.etag || t.trim() == "*"));
        let vary = self.gzip.is_some().then_some("Accept-Encoding");
        if fresh {
            return HttpResponse {
                status: 304,
                content_type: self.content_type,
                cache_control: Some(self.cache_control),
                etag: Some(self.etag.clone()),
                vary,
                ..HttpResponse::default()
            };
        }
        let (body, encoding) = match &self.gzip {
            Some(z) if accepts_gzip(request.accept_encoding.as_deref()) => {
                (z.clone(), Some("gzip"))
            }
            _ => (self.body.clone(), None),
        };
        HttpResponse {
            status: 200,
            content_type: self.content_type,
            body,
            cache_control: Some(self.cache_control),
            content_encoding: encoding,
            etag: Some(self.etag.clone()),
            vary,
        }
    }
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut z = GzEncoder::new(Vec::with_capacity(body.len() / 2), Compression::best());
    z.write_all(body).ok()?;
    z.finish().ok().map(Bytes::from)
}

/// True if an `Accept-Encoding` header takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(header: Option<&str>) -> bool {
    header.is_some_and(|h| {
        h.split(',').any(|part| {
            let mut bits = part.split(';').map(str::trim);
            let name = bits.next().unwrap_or_default();
            let refused = bits.any(|b| {
                matches!(b.replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000")
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// The page's files by path.
#[derive(Debug)]
struct Site {
    files: HashMap<String, File>,
}

impl Site {
    fn build() -> Site {
        let mut version = Fnv64::new();
        version.bytes(SCRIPT);
        version.bytes(MODULE);
        let dir = format!("/assets/{:016x}/", version.finish());
        let index = Bytes::from(INDEX.replace(ASSETS_PLACEHOLDER, &dir));
        let immutable = "public, max-age=31536000, immutable";
        let mut files = HashMap::new();
        let page = File::new("text/html; charset=utf-8", index, "no-cache");
        files.insert(
            format!("{dir}pong_web.js"),
            File::new("text/javascript; charset=utf-8", Bytes::from_static(SCRIPT), immutable),
        );
        files.insert(
            format!("{dir}pong_web_bg.wasm"),
            File::new("application/wasm", Bytes::from_static(MODULE), immutable),
        );
        files.insert("/".to_owned(), page);
        Site { files }
    }
}

/// The page and its files in front of another handler (the operators' endpoints), which
/// answers every other path.
pub(crate) struct WebFrontend {
    site: OnceLock<Site>,
    inner: Arc<dyn HttpHandler>,
}

impl WebFrontend {
    pub(crate) fn new(inner: impl HttpHandler) -> WebFrontend {
        WebFrontend { site: OnceLock::new(), inner: Arc::new(inner) }
    }
}

#[async_trait]
impl HttpHandler for WebFrontend {
    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let ours = request.path == "/" || request.path.starts_with("/assets/");
        if !ours || (request.method != "GET" && request.method != "HEAD") {
            return self.inner.handle(request).await;
        }
        let site = self.site.get_or_init(Site::build);
        match site.files.get(&request.path) {
            Some(file) => file.response(&request),
            // An old page asking for the files of another version: reloading fetches this one.
            None => HttpResponse::text(404, "no such file: reload the page\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rest;

    #[async_trait]
    impl HttpHandler for Rest {
        async fn handle(&self, request: HttpRequest) -> HttpResponse {
            HttpResponse::text(200, format!("operators: {}", request.path))
        }
    }

    fn get(path: &str) -> HttpRequest {
        HttpRequest { method: "GET".into(), path: path.into(), ..HttpRequest::default() }
    }

    #[tokio::test]
    async fn the_page_names_its_files_and_each_is_served_with_its_type() {
        let web = WebFrontend::new(Rest);
        let page = web.handle(get("/")).await;
        assert_eq!((page.status, page.content_type), (200, "text/html; charset=utf-8"));
        assert_eq!(page.cache_control, Some("no-cache"));
        let html = String::from_utf8(page.body.to_vec()).unwrap();
        assert!(!html.contains(ASSETS_PLACEHOLDER), "{html}");
        let start = html.find("/assets/").unwrap();
        let dir = &html[start..start + "/assets/".len() + 17];
        let script = web.handle(get(&format!("{dir}pong_web.js"))).await;
        assert_eq!((script.status, script.content_type), (200, "text/javascript; charset=utf-8"));
        assert_eq!(&script.body[..], SCRIPT);
        let module = web.handle(get(&format!("{dir}pong_web_bg.wasm"))).await;
        assert_eq!((module.status, module.content_type), (200, "application/wasm"));
        assert_eq!(module.cache_control, Some("public, max-age=31536000, immutable"));
        assert_eq!(&module.body[..], MODULE);
        assert_eq!(web.handle(get("/assets/0000000000000000/pong_web.js")).await.status, 404);
        assert_eq!(web.handle(get("/metrics")).await.body, "operators: /metrics");
    }

    #[tokio::test]
    async fn gzip_when_asked_and_304_when_the_copy_is_fresh() {
        let web = WebFrontend::new(Rest);
        let html = String::from_utf8(web.handle(get("/")).await.body.to_vec()).unwrap();
        let start = html.find("/assets/").unwrap();
        let path = format!("{}pong_web_bg.wasm", &html[start..start + "/assets/".len() + 17]);
        let zipped = web
            .handle(HttpRequest { accept_encoding: Some("gzip, deflate, br".into()), ..get(&path) })
            .await;
        assert_eq!((zipped.content_encoding, zipped.vary), (Some("gzip"), Some("Accept-Encoding")));
        assert!(zipped.body.len() < MODULE.len() / 2, "{} of {}", zipped.body.len(), MODULE.len());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped.body[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, MODULE);
        let refused = web
            .handle(HttpRequest { accept_encoding: Some("gzip;q=0, br".into()), ..get(&path) })
            .await;
        assert_eq!(refused.content_encoding, None);
        let again =
            web.handle(HttpRequest { if_none_match: zipped.etag.clone(), ..get(&path) }).await;
        assert_eq!((again.status, again.body.len()), (304, 0));
    }
}
