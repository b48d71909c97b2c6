//! A real OpenAI-compatible HTTP server on loopback that replays a script, for tests.
//!
//! The generate loop must be tested against the real HTTP path (STYLE.md, practice 4), so this
//! listens on `127.0.0.1:0`, parses real requests and answers `POST /v1/chat/completions` with
//! the next scripted [`Step`]: a chat completion with given text and token counts, an error
//! status (with `Retry-After` if wanted), or either of those after a delay. Every request is
//! recorded, so a test can check what was sent (model, messages, headers).
//!
//! It is bounded: each connection is served on its own short-lived thread, a request beyond the
//! script gets a non-retryable 418, and the server stops when dropped or after [`LIFETIME`],
//! whichever comes first, so a broken test cannot hang the suite.
//!
//! ```ignore
//! let server = FakeOpenAi::start([Step::error(500, "busy"), Step::reply("```c\n...\n```")]);
//! let config = EndpointConfig::new(server.base_url(), "test-model");
//! // ... call the provider ...
//! assert_eq!(server.requests()[1].messages()[0].0, "system");
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The longest a server lives, whatever the test does.
pub const LIFETIME: Duration = Duration::from_secs(600);

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// A chat completion whose message is `content`.
    Reply {
        content: String,
        /// `None` leaves `usage` out of the response, as some local servers do.
        usage: Option<(u64, u64)>,
        finish_reason: String,
    },
    /// An error status with a raw body and extra headers.
    Status {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// A 200 whose body is exactly this (for malformed replies).
    RawOk(String),
    /// Wait, then answer (or find the client gone).
    Delay(Duration, Box<Step>),
}

impl Step {
    /// A completion reporting 100 prompt and 50 completion tokens.
    pub fn reply(content: impl Into<String>) -> Step {
        Step::reply_with_usage(content, 100, 50)
    }

    pub fn reply_with_usage(content: impl Into<String>, prompt: u64, completion: u64) -> Step {
        Step::Reply {
            content: content.into(),
            usage: Some((prompt, completion)),
            finish_reason: "stop".to_string(),
        }
    }

    /// An error in OpenAI's JSON shape: `{"error": {"message": ..., "type": ..., "code": ...}}`.
    pub fn error(status: u16, message: &str) -> Step {
        let body = json!({"error": {"message": message, "type": "test_error", "param": null, "code": null}});
        Step::Status {
            status,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// HTTP 429 asking the client to wait `seconds`.
    pub fn rate_limited(seconds: u64) -> Step {
        Step::error(429, "Rate limit reached; please retry")
            .with_header("Retry-After", &seconds.to_string())
    }

    /// Adds a response header (only to error steps).
    pub fn with_header(mut self, name: &str, value: &str) -> Step {
        if let Step::Status { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// This step, answered only after `delay`.
    pub fn delayed(self, delay: Duration) -> Step {
        Step::Delay(delay, Box::new(self))
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn model(&self) -> Option<&str> {
        self.body["model"].as_str()
    }

    /// `(role, content)` of each message sent.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                        (text(&m["role"]), text(&m["content"]))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct Shared {
    script: Mutex<VecDeque<Step>>,
    requests: Mutex<Vec<RecordedRequest>>,
    stop: AtomicBool,
    served: AtomicUsize,
}

/// The running server; stops when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOpenAi {
    /// Starts a server that answers with `script`, one step per request, in order.
    pub fn start(script: impl IntoIterator<Item = Step>) -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into_iter().collect()),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            served: AtomicUsize::new(0),
        });
        let accept_shared = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(listener, accept_shared));
        FakeOpenAi {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// The base URL to configure a client with, e.g. `http://127.0.0.1:41234/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Scripted steps not yet used.
    pub fn remaining(&self) -> usize {
        lock(&self.shared.script).len()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let deadline = Instant::now() + LIFETIME;
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared, deadline);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    shared.stop.store(true, Ordering::SeqCst);
}

/// Reads one request, records it and writes the scripted answer; the connection is then closed.
fn serve(stream: TcpStream, shared: &Shared, deadline: Instant) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("unknown").to_string();
    lock(&shared.requests).push(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        headers,
        body,
    });

    let step = if method != "POST" || path != "/v1/chat/completions" {
        Step::error(404, &format!("fake server: no route for {method} {path}"))
    } else {
        lock(&shared.script)
            .pop_front()
            .unwrap_or_else(|| Step::error(418, "fake server: no scripted response left"))
    };
    let n = shared.served.fetch_add(1, Ordering::SeqCst);
    answer(stream, step, &model, n, shared, deadline)
}

fn answer(
    mut stream: TcpStream,
    step: Step,
    model: &str,
    n: usize,
    shared: &Shared,
    deadline: Instant,
) -> std::io::Result<()> {
    let (status, body, extra) = match step {
        Step::Delay(delay, then) => {
            let until = Instant::now() + delay;
            while Instant::now() < until.min(deadline) && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return answer(stream, *then, model, n, shared, deadline);
        }
        Step::Reply {
            content,
            usage,
            finish_reason,
        } => {
            let mut body = json!({
                "id": format!("chatcmpl-fake-{n}"),
                "object": "chat.completion",
                "created": 1_700_000_000u32,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }],
            });
            if let Some((p, c)) = usage {
                body["usage"] =
                    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
            }
            (200, body.to_string(), Vec::new())
        }
        Step::Status {
            status,
            body,
            headers,
        } => (status, body, headers),
        Step::RawOk(body) => (200, body, Vec::new()),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
