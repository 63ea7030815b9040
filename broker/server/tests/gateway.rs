//! The gateway end to end: `twinwire run`'s server on a free port with a journal in a temp
//! directory, driven by a real HTTP client and a real WebSocket client. Things and policies over
//! HTTP (status codes, ETag, Location, conditional requests, field selectors, error bodies),
//! messages answered by a WebSocket client, events with filters and extra fields, a custom
//! acknowledgement issued over the WebSocket, and every authentication mode with its refusals.

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use twinwire::config::{Config, JwtConfig};
use twinwire::run::{self, Running};

const NS: &str = "org.eclipse.ditto";

struct Server {
    running: Running,
    base: String,
    _dir: tempfile::TempDir,
}

async fn server_with(mut config: Config, users: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = Some(dir.path().to_owned());
    let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    run::add_flag_users(&mut config, &users).expect("users");
    let running = run::start(config, false).await.expect("started");
    let base = format!("http://{}", running.addr);
    Server {
        running,
        base,
        _dir: dir,
    }
}

async fn server() -> Server {
    server_with(Config::default(), &["alice:wonderland", "bob:builder"]).await
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn thing_url(server: &Server, thing: &str, path: &str) -> String {
    format!("{}/api/2/things/{NS}:{thing}{path}", server.base)
}

async fn body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn things_over_http() {
    let s = server().await;
    let http = client();
    let url = thing_url(&s, "lamp", "");
    // Create: 201 with Location and ETag.
    let created = http
        .put(&url)
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"attributes": {"room": "kitchen", "on": false}, "features": {"light": {"properties": {"level": 10}}}}))
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.headers()["location"],
        format!("/api/2/things/{NS}:lamp")
    );
    assert_eq!(created.headers()["etag"], "\"rev:1\"");
    assert_eq!(body(created).await["attributes"]["room"], json!("kitchen"));
    // Retrieve a sub-resource and with a field selector.
    let level = http
        .get(thing_url(&s, "lamp", "/features/light/properties/level"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(level.status(), 200);
    assert_eq!(body(level).await, json!(10));
    let selected = http
        .get(format!("{url}?fields=attributes/room"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        body(selected).await,
        json!({"attributes": {"room": "kitchen"}})
    );
    // Modify: 204; merge: 204.
    let modified = http
        .put(thing_url(&s, "lamp", "/attributes/on"))
        .basic_auth("alice", Some("wonderland"))
        .json(&json!(true))
        .send()
        .await
        .expect("put");
    assert_eq!(modified.status(), 204);
    let merged = http
        .patch(thing_url(&s, "lamp", "/attributes"))
        .basic_auth("alice", Some("wonderland"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"room":null,"floor":2}"#)
        .send()
        .await
        .expect("patch");
    assert_eq!(merged.status(), 204);
    let attributes = http
        .get(thing_url(&s, "lamp", "/attributes"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(body(attributes).await, json!({"on": true, "floor": 2}));
    // If-None-Match on a retrieve that matches: 304 without a body.
    let etag = http
        .get(&url)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get")
        .headers()["etag"]
        .clone();
    let not_modified = http
        .get(&url)
        .basic_auth("alice", Some("wonderland"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("get");
    assert_eq!(not_modified.status(), 304);
    assert_eq!(body(not_modified).await, Value::Null);
    // A failed precondition: 412 with Ditto's body.
    let refused = http
        .put(thing_url(&s, "lamp", "/attributes/on"))
        .basic_auth("alice", Some("wonderland"))
        .header("if-match", "\"rev:1\"")
        .json(&json!(false))
        .send()
        .await
        .expect("put");
    assert_eq!(refused.status(), 412);
    assert_eq!(
        body(refused).await["error"],
        json!("things:precondition.failed")
    );
    // Another user may not see it: 404, not 403.
    let hidden = http
        .get(&url)
        .basic_auth("bob", Some("builder"))
        .send()
        .await
        .expect("get");
    assert_eq!(hidden.status(), 404);
    assert_eq!(body(hidden).await["error"], json!("things:thing.notfound"));
    // Malformed JSON: 400.
    let malformed = http
        .put(thing_url(&s, "lamp", "/attributes/x"))
        .basic_auth("alice", Some("wonderland"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("put");
    assert_eq!(malformed.status(), 400);
    assert_eq!(body(malformed).await["error"], json!("json.invalid"));
    // An invalid thing ID: 400.
    let invalid = http
        .get(format!("{}/api/2/things/no-namespace", s.base))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(invalid.status(), 400);
    assert_eq!(body(invalid).await["error"], json!("things:id.invalid"));
    // ?ids=
    let listed = http
        .get(format!(
            "{}/api/2/things?ids={NS}:lamp,{NS}:missing",
            s.base
        ))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    let listed = body(listed).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // POST creates with a generated ID.
    let posted = http
        .post(format!("{}/api/2/things", s.base))
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"attributes": {"made": "by post"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 201);
    let location = posted.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        location.starts_with(&format!("/api/2/things/{NS}:")),
        "{location}"
    );
    // DELETE: 204, then 404.
    let deleted = http
        .delete(&url)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = http
        .get(&url)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), 404);
    // A body above the limit: 413.
    let huge = "x".repeat(2 * 1024 * 1024);
    let too_large = http
        .put(thing_url(&s, "big", "/attributes/x"))
        .basic_auth("alice", Some("wonderland"))
        .header("content-type", "application/json")
        .body(format!("\"{huge}\""))
        .send()
        .await
        .expect("put");
    assert_eq!(too_large.status(), 413);
    s.running.stop().await.expect("stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_whoami_and_check_permissions() {
    let s = server().await;
    let http = client();
    let created = http
        .put(thing_url(&s, "shared", ""))
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"attributes": {"a": 1}}))
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    let policy_url = format!("{}/api/2/policies/{NS}:shared", s.base);
    // Alice lets Bob read the thing.
    let entry = http
        .put(format!("{policy_url}/entries/bob"))
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"subjects": {"nginx:bob": {"type": "basic"}}, "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}))
        .send()
        .await
        .expect("put");
    assert_eq!(entry.status(), 201);
    let subjects = http
        .get(format!("{policy_url}/entries/bob/subjects"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        body(subjects).await,
        json!({"nginx:bob": {"type": "basic"}})
    );
    let read = http
        .get(thing_url(&s, "shared", "/attributes/a"))
        .basic_auth("bob", Some("builder"))
        .send()
        .await
        .expect("get");
    assert_eq!(read.status(), 200);
    let write = http
        .put(thing_url(&s, "shared", "/attributes/a"))
        .basic_auth("bob", Some("builder"))
        .json(&json!(2))
        .send()
        .await
        .expect("put");
    assert_eq!(write.status(), 403);
    assert_eq!(
        body(write).await["error"],
        json!("things:attribute.notmodifiable")
    );
    let whoami = http
        .get(format!("{}/api/2/whoami", s.base))
        .basic_auth("bob", Some("builder"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        body(whoami).await,
        json!({"subjects": ["nginx:bob"], "defaultSubject": "nginx:bob"})
    );
    let check = http
        .post(format!("{}/api/2/checkPermissions", s.base))
        .basic_auth("bob", Some("builder"))
        .json(&json!({
            "read": {"resource": "thing:/attributes", "entityId": format!("{NS}:shared"), "hasPermissions": ["READ"]},
            "write": {"resource": "thing:/attributes", "entityId": format!("{NS}:shared"), "hasPermissions": ["READ", "WRITE"]},
            "policy": {"resource": "policy:/", "entityId": format!("{NS}:shared"), "hasPermissions": ["READ"]},
            "missing": {"resource": "thing:/", "entityId": format!("{NS}:missing"), "hasPermissions": ["READ"]}
        }))
        .send()
        .await
        .expect("post");
    assert_eq!(
        body(check).await,
        json!({"read": true, "write": false, "policy": false, "missing": false})
    );
    s.running.stop().await.expect("stopped cleanly");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn websocket(s: &Server, user: &str, password: &str, query: &str) -> Ws {
    let url = format!("{}/ws/2{query}", s.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    request.headers_mut().insert(
        "authorization",
        format!("Basic {token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connected");
    ws
}

async fn receive(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("open")
            .expect("message");
        if let Message::Text(text) = message {
            return text.to_string();
        }
    }
}

async fn receive_json(ws: &mut Ws) -> Value {
    let text = receive(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::Text(text.into().into()))
        .await
        .expect("sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_commands_events_messages_and_acks() {
    let s = server().await;
    let http = client();
    let created = http
        .put(thing_url(&s, "ws-lamp", ""))
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"attributes": {"room": "kitchen", "n": 0}}))
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    // A device session: answers messages, issues a custom ack for events.
    let mut device = websocket(&s, "alice", "wonderland", "?declared-acks=device-ack").await;
    send(&mut device, "START-SEND-MESSAGES").await;
    assert_eq!(receive(&mut device).await, "START-SEND-MESSAGES:ACK");
    send(&mut device, "START-SEND-EVENTS?filter=eq(attributes%2Froom,%22kitchen%22)&extraFields=attributes%2Froom").await;
    assert_eq!(receive(&mut device).await, "START-SEND-EVENTS:ACK");
    // A second session declaring the same label is refused.
    let url = format!(
        "{}/ws/2?declared-acks=device-ack",
        s.base.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().expect("request");
    let token = base64::engine::general_purpose::STANDARD.encode("alice:wonderland");
    request.headers_mut().insert(
        "authorization",
        format!("Basic {token}").parse().expect("header"),
    );
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "the label is taken");

    // A twin command over the WebSocket: its response.
    let mut app = websocket(&s, "alice", "wonderland", "").await;
    send(
        &mut app,
        json!({
            "topic": format!("{NS}/ws-lamp/things/twin/commands/retrieve"),
            "headers": {"correlation-id": "ws-1"}, "path": "/attributes/room"
        })
        .to_string(),
    )
    .await;
    let response = receive_json(&mut app).await;
    assert_eq!(
        (response["status"].clone(), response["value"].clone()),
        (json!(200), json!("kitchen"))
    );
    assert_eq!(response["headers"]["correlation-id"], json!("ws-1"));

    // An HTTP modify requesting the device's ack: the device gets the event (enriched),
    // acknowledges it, and the HTTP answer aggregates both acks.
    let modify = {
        let http = http.clone();
        let url = thing_url(&s, "ws-lamp", "/attributes/n");
        tokio::spawn(async move {
            http.put(url)
                .basic_auth("alice", Some("wonderland"))
                .header("requested-acks", "twin-persisted,device-ack")
                .header("timeout", "5s")
                .json(&json!(1))
                .send()
                .await
                .expect("put")
        })
    };
    let event = receive_json(&mut device).await;
    assert_eq!(
        event["topic"],
        json!(format!("{NS}/ws-lamp/things/twin/events/modified"))
    );
    assert_eq!(event["extra"], json!({"attributes": {"room": "kitchen"}}));
    let correlation = event["headers"]["correlation-id"].clone();
    send(
        &mut device,
        json!({
            "topic": format!("{NS}/ws-lamp/things/twin/acks/device-ack"),
            "headers": {"correlation-id": correlation}, "path": "/", "status": 200, "value": "seen"
        })
        .to_string(),
    )
    .await;
    let answered = modify.await.expect("task");
    assert_eq!(answered.status(), 200);
    let acks = body(answered).await;
    assert_eq!(acks["device-ack"]["status"], json!(200), "{acks}");
    assert_eq!(acks["twin-persisted"]["status"], json!(204), "{acks}");

    // An HTTP message answered by the device over the WebSocket.
    let message = {
        let http = http.clone();
        let url = thing_url(&s, "ws-lamp", "/inbox/messages/switch?timeout=5s");
        tokio::spawn(async move {
            http.post(url)
                .basic_auth("alice", Some("wonderland"))
                .header("content-type", "text/plain")
                .body("on please")
                .send()
                .await
                .expect("post")
        })
    };
    let incoming = receive_json(&mut device).await;
    assert_eq!(
        incoming["topic"],
        json!(format!("{NS}/ws-lamp/things/live/messages/switch"))
    );
    assert_eq!(incoming["value"], json!("on please"));
    send(&mut device, json!({
        "topic": incoming["topic"], "path": "/inbox/messages/switch", "status": 200,
        "headers": {"correlation-id": incoming["headers"]["correlation-id"], "content-type": "text/plain"},
        "value": "switched"
    }).to_string()).await;
    let reply = message.await.expect("task");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.expect("text"), "switched");
    // Filtered out: moving the lamp out of the kitchen produces no event for the device.
    send(&mut device, "STOP-SEND-MESSAGES").await;
    assert_eq!(receive(&mut device).await, "STOP-SEND-MESSAGES:ACK");
    let moved = http
        .put(thing_url(&s, "ws-lamp", "/attributes/room"))
        .basic_auth("alice", Some("wonderland"))
        .json(&json!("hall"))
        .send()
        .await
        .expect("put");
    assert_eq!(moved.status(), 204);
    let nothing = tokio::time::timeout(Duration::from_millis(300), device.next()).await;
    assert!(nothing.is_err(), "no event: {nothing:?}");
    // A malformed message gets an error envelope, and the session goes on.
    send(&mut app, "{not json").await;
    let error = receive_json(&mut app).await;
    assert_eq!(error["status"], json!(400));
    assert_eq!(error["value"]["error"], json!("json.invalid"));
    s.running.stop().await.expect("stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authentication_mode_and_its_refusals() {
    // Basic auth.
    let s = server().await;
    let http = client();
    let whoami = format!("{}/api/2/whoami", s.base);
    let none = http.get(&whoami).send().await.expect("get");
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Basic realm=\"twinwire\""
    );
    assert_eq!(
        body(none).await,
        json!({"status": 401, "error": "gateway:authentication.failed", "message": "Unauthorized.", "description": "Check if your credentials were correct."})
    );
    let wrong = http
        .get(&whoami)
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), 401);
    let unknown = http
        .get(&whoami)
        .basic_auth("mallory", Some("x"))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), 401);
    let ok = http
        .get(&whoami)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(body(ok).await["defaultSubject"], json!("nginx:alice"));
    // Pre-authentication is off by default: the header is ignored.
    let ignored = http
        .get(&whoami)
        .header("x-ditto-pre-authenticated", "nginx:proxy")
        .send()
        .await
        .expect("get");
    assert_eq!(ignored.status(), 401);
    s.running.stop().await.expect("stopped");

    // Pre-authenticated from a trusted address (the test client is on 127.0.0.1).
    let mut config = Config::default();
    config.auth.pre_authenticated.enabled = true;
    let s = server_with(config, &[]).await;
    let whoami = format!("{}/api/2/whoami", s.base);
    let proxied = http
        .get(&whoami)
        .header("x-ditto-pre-authenticated", "nginx:proxy-user")
        .send()
        .await
        .expect("get");
    assert_eq!(
        body(proxied).await["defaultSubject"],
        json!("nginx:proxy-user")
    );
    let missing = http.get(&whoami).send().await.expect("get");
    assert_eq!(missing.status(), 401);
    s.running.stop().await.expect("stopped");
    // ... and refused from an address not trusted.
    let mut config = Config::default();
    config.auth.pre_authenticated.enabled = true;
    config.auth.pre_authenticated.trusted = vec!["10.1.2.3".parse().expect("ip")];
    let s = server_with(config, &[]).await;
    let untrusted = http
        .get(format!("{}/api/2/whoami", s.base))
        .header("x-ditto-pre-authenticated", "nginx:proxy-user")
        .send()
        .await
        .expect("get");
    assert_eq!(untrusted.status(), 401);
    s.running.stop().await.expect("stopped");

    // JWT (HS256 here; JWKS keys are read the same way).
    let mut config = Config::default();
    config.auth.jwt = Some(JwtConfig {
        jwks_file: None,
        hs256_secret: Some("gateway-test-secret".into()),
        issuer: Some("https://issuer.test".into()),
        audience: None,
        subject: "jwt:{{ jwt:sub }}".into(),
        token_integration_subject: twinwire::config::default_token_integration_subject(),
    });
    let s = server_with(config, &[]).await;
    let whoami = format!("{}/api/2/whoami", s.base);
    let exp = chrono::Utc::now().timestamp() + 600;
    let sign = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("token")
    };
    let good = sign(
        json!({"sub": "carol", "iss": "https://issuer.test", "exp": exp}),
        "gateway-test-secret",
    );
    let ok = http
        .get(&whoami)
        .bearer_auth(&good)
        .send()
        .await
        .expect("get");
    assert_eq!(body(ok).await["defaultSubject"], json!("jwt:carol"));
    let forged = sign(
        json!({"sub": "carol", "iss": "https://issuer.test", "exp": exp}),
        "another-secret",
    );
    let refused = http
        .get(&whoami)
        .bearer_auth(&forged)
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), 401);
    assert_eq!(body(refused).await["error"], json!("gateway:jwt.invalid"));
    let expired = sign(
        json!({"sub": "carol", "iss": "https://issuer.test", "exp": 1000}),
        "gateway-test-secret",
    );
    assert_eq!(
        http.get(&whoami)
            .bearer_auth(&expired)
            .send()
            .await
            .expect("get")
            .status(),
        401
    );
    let missing = http.get(&whoami).send().await.expect("get");
    assert_eq!(missing.status(), 401);
    assert_eq!(
        body(missing).await["message"],
        json!("The JWT was missing.")
    );
    s.running.stop().await.expect("stopped");

    // Nothing configured: a development user, printed at start-up.
    let s = server_with(Config::default(), &[]).await;
    let (user, password) = s
        .running
        .development_user
        .clone()
        .expect("a development user");
    let ok = http
        .get(format!("{}/api/2/whoami", s.base))
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .expect("get");
    assert_eq!(
        body(ok).await["defaultSubject"],
        json!(format!("nginx:{user}"))
    );
    s.running.stop().await.expect("stopped");
}

/// Reads server-sent events from a streaming response: the next `data:` payload.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    return data.join("\n");
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.response.chunk())
                .await
                .expect("an event within 5 s")
                .expect("stream")
                .expect("open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn sse(s: &Server, path: &str) -> SseReader {
    let response = client()
        .get(format!("{}{path}", s.base))
        .basic_auth("alice", Some("wonderland"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/event-stream"));
    SseReader {
        response,
        buffer: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_of_changes_and_messages() {
    let s = server().await;
    let http = client();
    for thing in ["sse-1", "sse-2"] {
        let created = http
            .put(thing_url(&s, thing, ""))
            .basic_auth("alice", Some("wonderland"))
            .json(&json!({"attributes": {"room": "kitchen", "n": 0}}))
            .send()
            .await
            .expect("put");
        assert_eq!(created.status(), 201);
    }
    let mut all = sse(
        &s,
        &format!("/api/2/things?ids={NS}:sse-2&fields=thingId,attributes,_context/topic&extraFields=attributes/room"),
    )
    .await;
    let mut one = sse(&s, &format!("/api/2/things/{NS}:sse-2/attributes/n")).await;
    let mut inbox = sse(&s, &format!("/api/2/things/{NS}:sse-2/inbox/messages")).await;
    for (thing, n) in [("sse-1", 5), ("sse-2", 7)] {
        let modified = http
            .put(thing_url(&s, thing, "/attributes/n"))
            .basic_auth("alice", Some("wonderland"))
            .json(&json!(n))
            .send()
            .await
            .expect("put");
        assert_eq!(modified.status(), 204);
    }
    // The things' `created` events may still be on their way: skip them.
    let mut event: Value = serde_json::from_str(&all.next().await).expect("json");
    while event["_context"]["topic"]
        .as_str()
        .is_some_and(|t| t.ends_with("/created"))
    {
        event = serde_json::from_str(&all.next().await).expect("json");
    }
    assert_eq!(
        event,
        json!({
            "thingId": format!("{NS}:sse-2"),
            "attributes": {"room": "kitchen", "n": 7},
            "_context": {"topic": format!("{NS}/sse-2/things/twin/events/modified")}
        })
    );
    let mut n = one.next().await;
    if n == "0" {
        n = one.next().await;
    }
    assert_eq!(n, "7");
    let message = {
        let http = http.clone();
        let url = thing_url(&s, "sse-2", "/inbox/messages/ping?timeout=0");
        tokio::spawn(async move {
            http.post(url)
                .basic_auth("alice", Some("wonderland"))
                .header("content-type", "text/plain")
                .body("hello")
                .send()
                .await
                .expect("post")
        })
    };
    assert_eq!(inbox.next().await, "hello");
    assert_eq!(message.await.expect("task").status(), 202);
    drop((all, one, inbox));
    s.running.stop().await.expect("stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_the_listener() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let certificate = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write");
    let config = Config {
        tls: Some(twinwire::config::TlsConfig {
            certificate,
            private_key: key,
        }),
        ..Config::default()
    };
    let s = server_with(config, &["alice:wonderland"]).await;
    assert!(s.running.tls);
    let port = s.running.addr.port();
    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("root");
    let https = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve("localhost", s.running.addr)
        .build()
        .expect("client");
    let whoami = https
        .get(format!("https://localhost:{port}/api/2/whoami"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("https");
    assert_eq!(body(whoami).await["defaultSubject"], json!("nginx:alice"));
    // Plain HTTP is not served on a TLS listener.
    let plain = client()
        .get(format!("http://127.0.0.1:{port}/api/2/whoami"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    s.running.stop().await.expect("stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_verified_against_a_jwks_document() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let key = rcgen::KeyPair::generate().expect("P-256 key");
    let raw = key.public_key_raw(); // 0x04 || x || y
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "key-1", "alg": "ES256", "use": "sig",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65])
    }]});
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).expect("write");
    let mut config = Config::default();
    config.auth.jwt = Some(JwtConfig {
        jwks_file: Some(jwks_file),
        hs256_secret: None,
        issuer: Some("https://issuer.test".into()),
        audience: Some("twinwire".into()),
        subject: "jwt:{{ jwt:sub }}".into(),
        token_integration_subject: twinwire::config::default_token_integration_subject(),
    });
    let s = server_with(config, &[]).await;
    let whoami = format!("{}/api/2/whoami", s.base);
    let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("signing key");
    let sign = |claims: Value, kid: &str| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &signing).expect("token")
    };
    let exp = chrono::Utc::now().timestamp() + 600;
    let good = sign(
        json!({"sub": "dave", "iss": "https://issuer.test", "aud": "twinwire", "exp": exp}),
        "key-1",
    );
    let ok = client()
        .get(&whoami)
        .bearer_auth(&good)
        .send()
        .await
        .expect("get");
    assert_eq!(body(ok).await["defaultSubject"], json!("jwt:dave"));
    for bad in [
        // Another audience.
        sign(
            json!({"sub": "dave", "iss": "https://issuer.test", "aud": "elsewhere", "exp": exp}),
            "key-1",
        ),
        // A key the JWKS does not have.
        sign(
            json!({"sub": "dave", "iss": "https://issuer.test", "aud": "twinwire", "exp": exp}),
            "key-2",
        ),
    ] {
        let refused = client()
            .get(&whoami)
            .bearer_auth(&bad)
            .send()
            .await
            .expect("get");
        assert_eq!(refused.status(), 401);
        assert_eq!(body(refused).await["error"], json!("gateway:jwt.invalid"));
    }
    s.running.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_are_bounded() {
    let mut config = Config::default();
    config.limits.max_websocket_sessions = 1;
    let s = server_with(config, &["alice:wonderland"]).await;
    let first = websocket(&s, "alice", "wonderland", "").await;
    let url = format!("{}/ws/2", s.base.replacen("http", "ws", 1));
    let mut request = url.clone().into_client_request().expect("request");
    let token = base64::engine::general_purpose::STANDARD.encode("alice:wonderland");
    request.headers_mut().insert(
        "authorization",
        format!("Basic {token}").parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("a second session should be refused: {other:?}"),
    }
    // Once the first closes, there is room again.
    drop(first);
    let mut reconnected = None;
    for _ in 0..50 {
        let mut request = url.clone().into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Basic {token}").parse().expect("header"),
        );
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(request).await {
            reconnected = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reconnected.is_some(),
        "the slot is freed when a session ends"
    );
    s.running.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_integration_policy_actions() {
    let mut config = Config::default();
    config.auth.jwt = Some(JwtConfig {
        jwks_file: None,
        hs256_secret: Some("actions-secret".into()),
        issuer: None,
        audience: None,
        subject: "jwt:{{ jwt:sub }}".into(),
        token_integration_subject: twinwire::config::default_token_integration_subject(),
    });
    let s = server_with(config, &["alice:wonderland"]).await;
    let http = client();
    let policy_url = format!("{}/api/2/policies/{NS}:act", s.base);
    let execute = json!({"grant": ["EXECUTE"], "revoke": []});
    let created = http
        .put(&policy_url)
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"entries": {
            "admin": {"subjects": {"nginx:alice": {"type": "basic"}},
                      "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
            "jwt-users": {"subjects": {"jwt:carol": {"type": "jwt"}}, "resources": {
                "thing:/": {"grant": ["READ"], "revoke": []},
                "policy:/entries/jwt-users/actions/activateTokenIntegration": execute,
                "policy:/entries/jwt-users/actions/deactivateTokenIntegration": execute}}
        }}))
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201, "{}", body(created).await);
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = |sub: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": sub, "aud": "my-app", "exp": exp}),
            &jsonwebtoken::EncodingKey::from_secret(b"actions-secret"),
        )
        .expect("token")
    };
    let subjects_url = format!("{policy_url}/entries/jwt-users/subjects");
    let subjects = || async {
        body(
            http.get(&subjects_url)
                .basic_auth("alice", Some("wonderland"))
                .send()
                .await
                .expect("get"),
        )
        .await
    };
    // Carol injects the integration subject, expiring with her token.
    let activated = http
        .post(format!("{policy_url}/actions/activateTokenIntegration"))
        .bearer_auth(token("carol"))
        .send()
        .await
        .expect("post");
    assert_eq!(activated.status(), 204, "{}", body(activated).await);
    let injected = subjects().await["integration:jwt-users:my-app"].clone();
    assert_eq!(injected["type"], json!("jwt"));
    let expiry = chrono::DateTime::parse_from_rfc3339(injected["expiry"].as_str().expect("expiry"))
        .expect("instant");
    assert!(
        (expiry.timestamp() - exp).abs() <= 3600,
        "rounded up to the expiry granularity at most"
    );
    // ... and removes it again, for the entry alone.
    let deactivated = http
        .post(format!(
            "{policy_url}/entries/jwt-users/actions/deactivateTokenIntegration"
        ))
        .bearer_auth(token("carol"))
        .send()
        .await
        .expect("post");
    assert_eq!(deactivated.status(), 204);
    assert!(subjects()
        .await
        .get("integration:jwt-users:my-app")
        .is_none());
    // Basic auth cannot run an action: 400.
    let basic = http
        .post(format!("{policy_url}/actions/activateTokenIntegration"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("post");
    assert_eq!(basic.status(), 400);
    assert_eq!(body(basic).await["error"], json!("policies:action.failed"));
    // A token without EXECUTE: 403.
    let stranger = http
        .post(format!("{policy_url}/actions/activateTokenIntegration"))
        .bearer_auth(token("dave"))
        .send()
        .await
        .expect("post");
    assert_eq!(stranger.status(), 403);
    assert_eq!(
        body(stranger).await["message"],
        json!("Failed to execute action 'activateTokenIntegration'.")
    );
    s.running.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_definition() {
    let s = server().await;
    let http = client();
    let created = http
        .put(thing_url(&s, "migrating", ""))
        .basic_auth("alice", Some("wonderland"))
        .json(
            &json!({"definition": "https://models.example/old-1.0.0.tm.jsonld",
                      "attributes": {"location": "Berlin"},
                      "features": {"sensor": {"properties": {"t": 20}}}}),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    let request = json!({
        "thingDefinitionUrl": "https://models.example/new-2.0.0.tm.jsonld",
        "migrationPayload": {
            "attributes": {"site": "{{ thing-json:attributes/location }}"},
            "features": {"sensor": {"properties": {"unit": "C"}}, "fresh": {"properties": {"on": true}}}
        },
        // sensor exists, so its part is left out; fresh does not, so it is applied
        "patchConditions": {
            "thing:/features/sensor": "not(exists(/features/sensor))",
            "thing:/features/fresh": "not(exists(/features/fresh))"
        }
    });
    let url = thing_url(&s, "migrating", "/migrateDefinition");
    let dry = http
        .post(format!("{url}?dry-run=true"))
        .basic_auth("alice", Some("wonderland"))
        .json(&request)
        .send()
        .await
        .expect("post");
    assert_eq!(dry.status(), 202);
    let expected_patch = json!({
        "definition": "https://models.example/new-2.0.0.tm.jsonld",
        "attributes": {"site": "Berlin"},
        "features": {"fresh": {"properties": {"on": true}}}
    });
    assert_eq!(
        body(dry).await,
        json!({"thingId": format!("{NS}:migrating"), "patch": expected_patch, "mergeStatus": "DRY_RUN"})
    );
    let definition = || async {
        body(
            http.get(thing_url(&s, "migrating", "/definition"))
                .basic_auth("alice", Some("wonderland"))
                .send()
                .await
                .expect("get"),
        )
        .await
    };
    assert_eq!(
        definition().await,
        json!("https://models.example/old-1.0.0.tm.jsonld"),
        "a dry run changes nothing"
    );
    let applied = http
        .post(&url)
        .basic_auth("alice", Some("wonderland"))
        .json(&request)
        .send()
        .await
        .expect("post");
    assert_eq!(applied.status(), 200);
    assert_eq!(body(applied).await["mergeStatus"], json!("APPLIED"));
    assert_eq!(
        definition().await,
        json!("https://models.example/new-2.0.0.tm.jsonld")
    );
    let thing = body(
        http.get(thing_url(&s, "migrating", ""))
            .basic_auth("alice", Some("wonderland"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(
        thing["attributes"],
        json!({"location": "Berlin", "site": "Berlin"})
    );
    assert_eq!(
        thing["features"]["sensor"],
        json!({"properties": {"t": 20}})
    );
    assert_eq!(
        thing["features"]["fresh"],
        json!({"properties": {"on": true}})
    );
    // The model-based initialisation is refused, not ignored; a stranger sees no thing.
    let refused = http
        .post(&url)
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"thingDefinitionUrl": "https://x.example/m.tm.jsonld", "initializeMissingPropertiesFromDefaults": true}))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 400);
    let stranger = http
        .post(&url)
        .basic_auth("bob", Some("builder"))
        .json(&request)
        .send()
        .await
        .expect("post");
    assert_eq!(stranger.status(), 404);
    s.running.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_api_shows_connections_without_their_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("c.yaml"),
        "id: c1\nconnectionType: mqtt\nconnectionStatus: open\nuri: tcp://user:very-secret@127.0.0.1:1883\n\
         sources:\n  - addresses: [a/#]\n    qos: 1\n    authorizationContext: [integration:c1]\n",
    )
    .expect("write");
    let plugins = tempfile::tempdir().expect("temp dir");
    let config = Config {
        connections: Some(dir.path().to_owned()),
        plugins: Some(plugins.path().to_owned()),
        ..Config::default()
    };
    let s = server_with(config, &["alice:wonderland"]).await;
    let http = client();
    let get = |path: &str| {
        http.get(format!("{}/api/2/connections{path}", s.base))
            .basic_auth("alice", Some("wonderland"))
            .send()
    };
    // The directory is read at start; give the watcher its first round.
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = body(get("").await.expect("get")).await;
        if listed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed[0]["id"], json!("c1"));
    assert_eq!(listed[0]["uri"], json!("tcp://user:***@127.0.0.1:1883"));
    assert!(!listed.to_string().contains("very-secret"));
    let status = body(get("/c1/status").await.expect("get")).await;
    assert_eq!(
        status["liveStatus"],
        json!("failed"),
        "no plugin serves mqtt here: {status}"
    );
    let logs = body(get("/c1/logs").await.expect("get")).await;
    assert!(logs["connectionLogs"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("no adapter plugin serves"));
    let metrics = body(get("/c1/metrics").await.expect("get")).await;
    assert_eq!(metrics["connectionId"], json!("c1"));
    let missing = get("/nope").await.expect("get");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        body(missing).await["error"],
        json!("connectivity:connection.notfound")
    );
    s.running.stop().await.expect("stopped");
}
