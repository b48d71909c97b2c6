//! Talking to a chat model: one small trait, one OpenAI-compatible implementation.
//!
//! The generate loop only needs "send this conversation, get the reply text and what it cost", so
//! that is all [`ChatProvider`] asks for; the offline synthesiser and test doubles implement the
//! same trait. [`OpenAiProvider`] speaks the chat-completions protocol through `async-openai`, so
//! it works with OpenAI itself and with the local servers that copy its API (vLLM, Ollama,
//! llama.cpp server).
//!
//! Why it looks the way it does:
//! - schedgen is synchronous, so the provider owns a current-thread tokio runtime and blocks on
//!   it; callers never see async (do not call it from inside another tokio runtime).
//! - Endpoints fail in ordinary ways: rate limits, overloaded servers, a local model still
//!   loading. Those (429, 408, 5xx, timeouts, refused connections) are retried with exponential
//!   backoff and jitter, honouring `Retry-After`; a wrong key, a wrong model name or a malformed
//!   request are not, because retrying cannot fix them. Every error names the setting to change.
//! - The API key is a secret: it lives in [`ApiKey`], which has no `Display` or `Serialize` and a
//!   redacting `Debug`, and any server text that goes into an error has the key scrubbed out.
//! - Each call leaves a [`CallRecord`] (model, tokens, latency, attempts, failures seen) that the
//!   loop saves with the accepted scheduler, so a run can be audited and costed later.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use serde::{Deserialize, Serialize};

/// Where requests go when neither `--base-url` nor `OPENAI_BASE_URL` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Limit for one HTTP attempt, from sending the request to the end of the reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries after the first attempt, for failures that may go away.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// A server asking for a longer pause than this is waited on for this long only.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);
/// Longest piece of server text quoted in an error.
const QUOTE_LIMIT: usize = 300;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// What a message from us asks for (not sent to the model: providers that answer by rule,
    /// like the offline one, read it instead of parsing the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// With an improve request: what the benchmark measured of the scheduler it is about, as
    /// numbers (not sent to the model, whose request says it in words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// What the benchmark measured of a scheduler an improve request is about.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Its mean schedule efficiency: makespan over the best makespan its tasks' CPU times
    /// allow (1 is a perfect order; see `bench::efficiency`).
    pub efficiency: Option<f64>,
}

/// What one of our messages asks the model to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Write the scheduler.
    Generate,
    /// Fix the previous reply (diagnostics attached).
    Repair,
    /// The previous scheduler passed but was too slow: change its policy.
    Improve,
}

/// What is sent to the model: a system prompt, the task, then alternating replies and
/// follow-ups ("here is the compiler error, fix it").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub messages: Vec<Message>,
}

impl Conversation {
    /// A conversation that starts with the rules (`system`) and the task (`user`).
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Conversation {
        Conversation {
            messages: vec![
                Message {
                    role: Role::System,
                    content: system.into(),
                    purpose: None,
                    measured: None,
                },
                Message {
                    role: Role::User,
                    content: user.into(),
                    purpose: Some(Purpose::Generate),
                    measured: None,
                },
            ],
        }
    }

    /// Appends the model's reply, so the next request shows it what it wrote.
    pub fn push_assistant(&mut self, text: impl Into<String>) {
        self.messages.push(Message {
            role: Role::Assistant,
            content: text.into(),
            purpose: None,
            measured: None,
        });
    }

    /// Appends a follow-up from us (diagnostics, benchmark numbers, a request to fix).
    pub fn push_user(&mut self, text: impl Into<String>) {
        self.messages.push(Message {
            role: Role::User,
            content: text.into(),
            purpose: None,
            measured: None,
        });
    }

    /// Appends a follow-up from us that asks for `purpose`.
    pub fn push_request(&mut self, purpose: Purpose, text: impl Into<String>) {
        self.messages.push(Message {
            role: Role::User,
            content: text.into(),
            purpose: Some(purpose),
            measured: None,
        });
    }

    /// Appends a request to improve a scheduler the benchmark measured as `measured`.
    pub fn push_improve(&mut self, text: impl Into<String>, measured: Measured) {
        self.messages.push(Message {
            role: Role::User,
            content: text.into(),
            purpose: Some(Purpose::Improve),
            measured: Some(measured),
        });
    }

    /// What the latest improve request said was measured, when the last request is one.
    pub fn improving(&self) -> Option<&Measured> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.purpose.is_some())
            .filter(|m| m.purpose == Some(Purpose::Improve))
            .and_then(|m| m.measured.as_ref())
    }

    /// How many of our messages asked for `purpose`.
    pub fn requests(&self, purpose: Purpose) -> usize {
        self.messages
            .iter()
            .filter(|m| m.purpose == Some(purpose))
            .count()
    }
}

/// Tokens one call consumed, as the server reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;
    fn add(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            completion_tokens: self.completion_tokens + other.completion_tokens,
        }
    }
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, other: TokenUsage) {
        *self = *self + other;
    }
}

impl std::iter::Sum for TokenUsage {
    fn sum<I: Iterator<Item = TokenUsage>>(iter: I) -> TokenUsage {
        iter.fold(TokenUsage::default(), |a, b| a + b)
    }
}

/// What one successful call did, kept in the run's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The model asked for.
    pub model: String,
    /// The model the server says answered, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// `None` when the server did not report usage (some local servers): unknown, not zero.
    pub usage: Option<TokenUsage>,
    /// Wall time of the whole call, retries and waits between them included, seconds.
    pub latency_s: f64,
    /// HTTP attempts made, the successful one included.
    pub attempts: u32,
    /// One line per failed attempt, oldest first ("HTTP 500: overloaded", "timed out after 120 s").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Why the model stopped ("stop", "length", ...), when the server says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// What looked wrong with an answer that still arrived: cut at the token limit, a prompt
    /// the server truncated, reasoning removed from the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The model's answer to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    pub record: CallRecord,
    /// A provider that answers by rule and has no change to offer for an improve request says
    /// so here, with why, instead of writing code it has no reason to expect to be better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined: Option<String>,
}

/// Which provider and model produced a scheduler, for its metadata. Never holds the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// "openai", "offline", ...
    pub provider: String,
    pub model: String,
    /// Host (and port) of the endpoint, without credentials or path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_host: Option<String>,
}

/// Something that can answer a conversation.
pub trait ChatProvider {
    fn info(&self) -> ProviderInfo;
    fn chat(&self, conversation: &Conversation) -> Result<Reply, LlmError>;
}

/// A failed call: what went wrong, and what was tried before giving up.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct LlmError {
    pub kind: LlmErrorKind,
    /// HTTP attempts made.
    pub attempts: u32,
    /// One line per failed attempt, oldest first.
    pub failures: Vec<String>,
}

/// Why a call failed. Each message ends with what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmErrorKind {
    #[error("the endpoint {endpoint} rejected the API key (HTTP {status}): check OPENAI_API_KEY")]
    Unauthorized { endpoint: String, status: u16 },
    #[error("the endpoint {endpoint} refused the request (HTTP {status}: {message}){hint}")]
    Refused {
        endpoint: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error(
        "no reply from {endpoint} within {timeout_s} s ({attempts} attempt(s)): check that the \
         server is up and the model loaded, or raise the timeout"
    )]
    Timeout {
        endpoint: String,
        timeout_s: f64,
        attempts: u32,
    },
    #[error(
        "cannot connect to {endpoint} ({detail}) after {attempts} attempt(s): check \
         OPENAI_BASE_URL and that the server is running"
    )]
    Unreachable {
        endpoint: String,
        detail: String,
        attempts: u32,
    },
    #[error(
        "{endpoint} kept failing; gave up after {attempts} attempts (last: {last}): try again \
         later or allow more retries"
    )]
    Exhausted {
        endpoint: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "the endpoint {endpoint} did not answer with a chat completion ({detail}): check \
         OPENAI_BASE_URL (it usually ends in /v1)"
    )]
    BadReply { endpoint: String, detail: String },
    #[error("the model returned no text ({why})")]
    EmptyReply { why: String },
}

/// The API key. It can only be read by the code that puts it in the request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How to reach an OpenAI-compatible endpoint, and how patient to be with it.
#[derive(Clone)]
pub struct EndpointConfig {
    /// Base URL that `/chat/completions` is appended to, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    pub model: String,
    /// `None` for local servers that need no key (an empty bearer token is sent then).
    pub api_key: Option<ApiKey>,
    /// Limit for one attempt.
    pub timeout: Duration,
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub temperature: Option<f32>,
    /// Sent as `seed` (servers that honour it answer the same prompt the same way).
    pub seed: Option<i64>,
    /// Cap on the reply length, sent as `max_completion_tokens`.
    pub max_completion_tokens: Option<u32>,
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("base_url", &display_endpoint(&self.base_url))
            .field("model", &self.model)
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "<redacted>"
                } else {
                    "<none>"
                },
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("temperature", &self.temperature)
            .field("seed", &self.seed)
            .field("max_completion_tokens", &self.max_completion_tokens)
            .finish()
    }
}

impl EndpointConfig {
    /// A config with the default timeout and retry policy.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> EndpointConfig {
        EndpointConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            temperature: None,
            seed: None,
            max_completion_tokens: None,
        }
    }

    pub fn with_api_key(mut self, key: impl Into<String>) -> EndpointConfig {
        self.api_key = Some(ApiKey::new(key));
        self
    }

    /// Explicit values (from flags) win; the rest come from `OPENAI_BASE_URL`, `SCHEDGEN_MODEL`
    /// and `OPENAI_API_KEY`.
    pub fn resolve(
        base_url: Option<&str>,
        model: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<EndpointConfig> {
        EndpointConfig::resolve_with(base_url, model, api_key, |name| std::env::var(name).ok())
    }

    /// [`EndpointConfig::resolve`] with the environment given as a lookup function.
    pub fn resolve_with(
        base_url: Option<&str>,
        model: Option<&str>,
        api_key: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<EndpointConfig> {
        let pick = |explicit: Option<&str>, var: &str| {
            explicit
                .map(str::to_string)
                .or_else(|| env(var))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let base_url = pick(base_url, "OPENAI_BASE_URL").unwrap_or(DEFAULT_BASE_URL.to_string());
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            bail!(
                "the base URL {:?} is not an http(s) URL: set --base-url or OPENAI_BASE_URL to \
                 something like http://127.0.0.1:8000/v1",
                display_endpoint(&base_url)
            );
        }
        let Some(model) = pick(model, "SCHEDGEN_MODEL") else {
            bail!(
                "no model named: pass --model or set SCHEDGEN_MODEL (e.g. gpt-4.1, or the name \
                 your vLLM/Ollama/llama.cpp server serves)"
            );
        };
        let key = pick(api_key, "OPENAI_API_KEY");
        let mut config = EndpointConfig::new(base_url, model);
        if key.is_none() && config.base_url == DEFAULT_BASE_URL {
            bail!(
                "OPENAI_API_KEY is not set: export it, or point OPENAI_BASE_URL at a local \
                 OpenAI-compatible server that needs no key"
            );
        }
        config.api_key = key.map(ApiKey::new);
        Ok(config)
    }

    /// Whether the environment names an endpoint at all; when it does not, the generate loop
    /// falls back to the offline provider.
    pub fn configured_in_env() -> bool {
        ["OPENAI_BASE_URL", "OPENAI_API_KEY"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
    }
}

/// The base URL without credentials, for messages and metadata.
fn display_endpoint(base_url: &str) -> String {
    match base_url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => base_url.to_string(),
    }
}

/// Host and port of the base URL, without credentials.
fn endpoint_host(base_url: &str) -> Option<String> {
    let rest = base_url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

/// What the HTTP layer saw of the last response, which `async-openai` does not pass on.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    status: Option<u16>,
    retry_after: Option<Duration>,
}

/// One failed attempt.
#[derive(Debug, Clone)]
enum Failure {
    Status {
        status: u16,
        message: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    Timeout,
    Connect(String),
    /// The transfer broke off after connecting (reset, truncated body).
    Transport(String),
    /// The server answered 2xx with something that is not a chat completion.
    Decode(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, code, .. } => {
                (*status == 429 && code.as_deref() != Some("insufficient_quota"))
                    || *status == 408
                    || *status >= 500
            }
            Failure::Timeout | Failure::Connect(_) | Failure::Transport(_) => true,
            Failure::Decode(_) => false,
        }
    }

    fn line(&self, timeout: Duration) -> String {
        match self {
            Failure::Status {
                status, message, ..
            } if message.is_empty() || *status == 401 || *status == 403 => {
                format!("HTTP {status}")
            }
            Failure::Status {
                status, message, ..
            } => format!("HTTP {status}: {message}"),
            Failure::Timeout => format!("timed out after {} s", timeout.as_secs_f64()),
            Failure::Connect(d) => format!("connection failed: {d}"),
            Failure::Transport(d) => format!("transfer failed: {d}"),
            Failure::Decode(d) => format!("unreadable reply: {d}"),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

type RetryNotice = Box<dyn Fn(&str) + Send + Sync>;

/// A [`ChatProvider`] for any OpenAI-compatible chat-completions endpoint.
pub struct OpenAiProvider {
    config: EndpointConfig,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    notice: Option<RetryNotice>,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpenAiProvider {
    pub fn new(config: EndpointConfig) -> Result<OpenAiProvider> {
        if let Some(key) = &config.api_key {
            if !key.expose().bytes().all(|b| b.is_ascii_graphic()) {
                bail!(
                    "the API key has characters that cannot go in an HTTP header (a space, \
                     newline or quote pasted with it?): check OPENAI_API_KEY"
                );
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime for HTTP calls")?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("schedgen/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client (TLS roots?)")?;
        Ok(OpenAiProvider {
            config,
            http,
            runtime,
            notice: None,
        })
    }

    /// Calls `notice` with one line before each retry ("HTTP 503 ...; retrying in 2.1 s"), so a
    /// command can show why it is waiting.
    pub fn with_retry_notice(mut self, notice: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notice = Some(Box::new(notice));
        self
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    fn endpoint(&self) -> String {
        display_endpoint(&self.config.base_url)
    }

    fn request(&self, conversation: &Conversation) -> CreateChatCompletionRequest {
        let messages = conversation
            .messages
            .iter()
            .map(|m| -> ChatCompletionRequestMessage {
                let text = m.content.as_str();
                match m.role {
                    Role::System => ChatCompletionRequestSystemMessage::from(text).into(),
                    Role::User => ChatCompletionRequestUserMessage::from(text).into(),
                    Role::Assistant => ChatCompletionRequestAssistantMessage::from(text).into(),
                }
            })
            .collect();
        // `seed` is deprecated by OpenAI's API, but local servers (llama.cpp, vLLM) honour it.
        #[allow(deprecated)]
        CreateChatCompletionRequest {
            model: self.config.model.clone(),
            messages,
            temperature: self.config.temperature,
            seed: self.config.seed,
            max_completion_tokens: self.config.max_completion_tokens,
            ..Default::default()
        }
    }

    /// An `async-openai` client whose HTTP layer notes the status and `Retry-After` of the
    /// response into `seen`.
    fn client(&self, seen: Arc<Mutex<Seen>>) -> async_openai::Client<OpenAIConfig> {
        let key = self.config.api_key.as_ref().map_or("", ApiKey::expose);
        let config = OpenAIConfig::new()
            .with_api_base(self.config.base_url.clone())
            .with_api_key(key)
            .with_org_id("")
            .with_project_id("");
        let http = self.http.clone();
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            let seen = seen.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                let noted = Seen {
                    status: Some(response.status().as_u16()),
                    retry_after: retry_after(response.headers()),
                };
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = noted;
                Ok::<_, OpenAIError>(response)
            }
        });
        async_openai::Client::build(self.http.clone(), config).with_http_service(service)
    }

    fn attempt(
        &self,
        request: &CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, Failure> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let client = self.client(seen.clone());
        let outcome = self.runtime.block_on(async {
            tokio::time::timeout(self.config.timeout, client.chat().create(request.clone())).await
        });
        let seen = *seen.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Err(_elapsed) => Err(Failure::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.classify(e, seen)),
        }
    }

    fn classify(&self, error: OpenAIError, seen: Seen) -> Failure {
        let status_failure = |status: u16, message: &str, code: Option<String>| Failure::Status {
            status,
            message: self.quote(&error_message(message)),
            code,
            retry_after: seen.retry_after,
        };
        match error {
            OpenAIError::ApiError(e) => status_failure(
                e.status_code.as_u16(),
                &e.api_error.message,
                e.api_error.code.clone(),
            ),
            OpenAIError::JSONDeserialize(_, body) => match seen.status {
                Some(status) if !(200..300).contains(&status) => {
                    status_failure(status, &body, None)
                }
                _ => Failure::Decode(self.quote(&body)),
            },
            OpenAIError::Reqwest(e) if e.is_timeout() => Failure::Timeout,
            OpenAIError::Reqwest(e) if e.is_connect() => Failure::Connect(self.quote(&chain(&e))),
            OpenAIError::Reqwest(e) => Failure::Transport(self.quote(&chain(&e))),
            other => Failure::Transport(self.quote(&chain(&other))),
        }
    }

    /// Server or library text made safe to show: the key scrubbed out, one line, bounded.
    fn quote(&self, text: &str) -> String {
        let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(key) = &self.config.api_key {
            if !key.expose().is_empty() {
                text = text.replace(key.expose(), "<redacted>");
            }
        }
        if text.chars().count() > QUOTE_LIMIT {
            text = text.chars().take(QUOTE_LIMIT).collect::<String>() + "...";
        }
        text
    }

    /// Wait before retry number `retry` (1-based): the server's `Retry-After` if it gave one,
    /// else exponential backoff with jitter in [d/2, d].
    fn backoff(&self, retry: u32, failure: &Failure) -> Duration {
        if let Some(wait) = failure.retry_after() {
            return wait.min(RETRY_AFTER_CAP);
        }
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self
            .config
            .backoff_initial
            .saturating_mul(factor)
            .min(self.config.backoff_max);
        full.mul_f64(0.5 + 0.5 * fastrand::f64())
    }

    fn give_up(&self, failure: Failure, attempts: u32, failures: Vec<String>) -> LlmError {
        let endpoint = self.endpoint();
        let kind = match failure {
            Failure::Status {
                status: status @ (401 | 403),
                ..
            } => LlmErrorKind::Unauthorized { endpoint, status },
            ref f @ Failure::Status { .. } if f.retryable() => LlmErrorKind::Exhausted {
                endpoint,
                attempts,
                last: f.line(self.config.timeout),
            },
            Failure::Status {
                status,
                message,
                code,
                ..
            } => {
                let hint = match (status, code.as_deref()) {
                    (429, _) => {
                        ": the account has no quota left; add credit or use another endpoint"
                    }
                    (404, _) => {
                        ": check the model name (--model, SCHEDGEN_MODEL) and the base URL \
                         (OPENAI_BASE_URL, usually ending in /v1)"
                    }
                    (400 | 413 | 422, _) => {
                        ": the prompt may be longer than the model's context, or the server does \
                         not support a parameter"
                    }
                    _ => "",
                };
                LlmErrorKind::Refused {
                    endpoint,
                    status,
                    message,
                    hint: hint.to_string(),
                }
            }
            Failure::Timeout => LlmErrorKind::Timeout {
                endpoint,
                timeout_s: self.config.timeout.as_secs_f64(),
                attempts,
            },
            Failure::Connect(detail) => LlmErrorKind::Unreachable {
                endpoint,
                detail,
                attempts,
            },
            ref f @ Failure::Transport(_) => LlmErrorKind::Exhausted {
                endpoint,
                attempts,
                last: f.line(self.config.timeout),
            },
            Failure::Decode(detail) => LlmErrorKind::BadReply { endpoint, detail },
        };
        LlmError {
            kind,
            attempts,
            failures,
        }
    }
}

impl ChatProvider for OpenAiProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            provider: "openai".to_string(),
            model: self.config.model.clone(),
            endpoint_host: endpoint_host(&self.config.base_url),
        }
    }

    fn chat(&self, conversation: &Conversation) -> Result<Reply, LlmError> {
        let request = self.request(conversation);
        let start = Instant::now();
        let mut failures = Vec::new();
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            match self.attempt(&request) {
                Ok(response) => break response,
                Err(failure) => {
                    failures.push(failure.line(self.config.timeout));
                    if !failure.retryable() || attempts > self.config.max_retries {
                        return Err(self.give_up(failure, attempts, failures));
                    }
                    let wait = self.backoff(attempts, &failure);
                    if let Some(notice) = &self.notice {
                        notice(&format!(
                            "{} from {}; retrying in {:.1} s (retry {} of {})",
                            failure.line(self.config.timeout),
                            self.endpoint(),
                            wait.as_secs_f64(),
                            attempts,
                            self.config.max_retries
                        ));
                    }
                    std::thread::sleep(wait);
                }
            }
        };
        let latency_s = start.elapsed().as_secs_f64();
        let usage = response.usage.as_ref().map(|u| TokenUsage {
            prompt_tokens: u.prompt_tokens.into(),
            completion_tokens: u.completion_tokens.into(),
        });
        let served_model = Some(response.model.clone()).filter(|m| !m.is_empty());
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(LlmError {
                kind: LlmErrorKind::EmptyReply {
                    why: "the response has no choices".to_string(),
                },
                attempts,
                failures,
            });
        };
        let finish_reason = choice
            .finish_reason
            .and_then(|r| serde_json::to_value(r).ok())
            .and_then(|v| v.as_str().map(str::to_string));
        let (text, mut warnings) = match choice.message.content {
            Some(text) if !text.trim().is_empty() => strip_reasoning(&text),
            _ => {
                let why = match (&choice.message.refusal, &finish_reason) {
                    (Some(refusal), _) => format!("the model refused: {}", self.quote(refusal)),
                    (None, Some(reason)) => format!("finish reason: {reason}"),
                    (None, None) => "empty message".to_string(),
                };
                return Err(LlmError {
                    kind: LlmErrorKind::EmptyReply { why },
                    attempts,
                    failures,
                });
            }
        };
        if finish_reason.as_deref() == Some("length") {
            warnings.push(
                "the reply was cut at the token limit (finish_reason `length`): its code may be \
                 incomplete"
                    .into(),
            );
        }
        if let Some(u) = &usage {
            warnings.extend(truncated_prompt(conversation, u.prompt_tokens));
        }
        Ok(Reply {
            text,
            record: CallRecord {
                model: self.config.model.clone(),
                served_model,
                usage,
                latency_s,
                attempts,
                failures,
                finish_reason,
                warnings,
            },
            declined: None,
        })
    }
}

/// The reply without a reasoning model's thinking (`<think>…</think>`, which some servers leave
/// in the text), and a note when there was some.
fn strip_reasoning(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut removed = 0usize;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => {
                removed += end + "</think>".len();
                rest = &rest[start + end + "</think>".len()..];
            }
            // Thinking that never closed: everything after it was thought, not answered.
            None => {
                removed += rest.len() - start;
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let notes = if removed > 0 {
        vec![format!(
            "removed {removed} characters of the model's <think> reasoning from the reply"
        )]
    } else {
        Vec::new()
    };
    (out, notes)
}

/// Tokens per character of schedgen's prompts (English, C and tables), measured with
/// Qwen2.5's tokenizer on the generate prompt: 3.6k tokens for 12.9k characters.
pub const TOKENS_PER_CHAR: f64 = 0.28;

/// A warning when the server counted far fewer prompt tokens than the conversation holds: it
/// cut the prompt to fit its context (Ollama does so silently, to its default context).
fn truncated_prompt(conversation: &Conversation, reported: u64) -> Option<String> {
    let chars: usize = conversation.messages.iter().map(|m| m.content.len()).sum();
    let expected = chars as f64 * TOKENS_PER_CHAR;
    let at_ceiling = [2048u64, 4096, 8192].contains(&reported);
    (expected > 1000.0 && (reported as f64) < 0.6 * expected || at_ceiling && (reported as f64) < 0.9 * expected)
        .then(|| {
            format!(
                "the server counted {reported} prompt tokens for a prompt of about {expected:.0}: it \
                 probably truncated it to its context; raise the server's context (Ollama: \
                 OLLAMA_CONTEXT_LENGTH; llama.cpp: --ctx-size / --n_ctx)"
            )
        })
}

/// `Retry-After` (seconds) or OpenAI's `retry-after-ms`; HTTP dates are ignored.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// The `error.message` of an OpenAI-shaped JSON error body, else the text as it is.
/// (`async-openai` passes 5xx bodies on unparsed.)
fn error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.to_string())
}

/// An error and its causes on one line ("error sending request: connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn explicit_values_win_over_the_environment() {
        let vars = &[
            ("OPENAI_BASE_URL", "http://env-host:1/v1/"),
            ("SCHEDGEN_MODEL", "env-model"),
            ("OPENAI_API_KEY", "env-key"),
        ];
        let c = EndpointConfig::resolve_with(None, None, None, env(vars)).unwrap();
        assert_eq!(c.base_url, "http://env-host:1/v1");
        assert_eq!(c.model, "env-model");
        assert_eq!(c.api_key, Some(ApiKey::new("env-key")));
        let c = EndpointConfig::resolve_with(
            Some("http://flag-host:2/v1"),
            Some("flag-model"),
            Some("flag-key"),
            env(vars),
        )
        .unwrap();
        assert_eq!(c.base_url, "http://flag-host:2/v1");
        assert_eq!(c.model, "flag-model");
        assert_eq!(c.api_key, Some(ApiKey::new("flag-key")));
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let e = EndpointConfig::resolve_with(None, None, Some("k"), env(&[])).unwrap_err();
        assert!(e.to_string().contains("SCHEDGEN_MODEL"), "{e}");
        let e = EndpointConfig::resolve_with(None, Some("m"), None, env(&[])).unwrap_err();
        assert!(e.to_string().contains("OPENAI_API_KEY is not set"), "{e}");
        let e = EndpointConfig::resolve_with(Some("localhost:8000"), Some("m"), None, env(&[]))
            .unwrap_err();
        assert!(e.to_string().contains("not an http(s) URL"), "{e}");
        // A local server needs no key.
        let c = EndpointConfig::resolve_with(
            None,
            Some("m"),
            None,
            env(&[("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")]),
        )
        .unwrap();
        assert!(c.api_key.is_none());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let secret = "sk-test-very-secret-0123456789";
        let config =
            EndpointConfig::new("https://user:pw@example.com/v1", "m").with_api_key(secret);
        let provider = OpenAiProvider::new(config.clone()).unwrap();
        for text in [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{provider:?}"),
            format!("{:?}", config.api_key),
            serde_json::to_string(&provider.info()).unwrap(),
        ] {
            assert!(!text.contains(secret), "key leaked: {text}");
            assert!(!text.contains("pw@"), "URL credentials leaked: {text}");
        }
        assert!(format!("{config:?}").contains("<redacted>"));
        assert_eq!(
            provider.info().endpoint_host.as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn quoted_server_text_is_scrubbed_and_bounded() {
        let provider =
            OpenAiProvider::new(EndpointConfig::new("http://h/v1", "m").with_api_key("sk-abc123"))
                .unwrap();
        let q = provider.quote("Incorrect API key provided: sk-abc123.\n\nSee docs.");
        assert_eq!(q, "Incorrect API key provided: <redacted>. See docs.");
        assert!(provider.quote(&"x".repeat(1000)).len() < QUOTE_LIMIT + 10);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut config = EndpointConfig::new("http://h/v1", "m");
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_max = Duration::from_millis(350);
        let provider = OpenAiProvider::new(config).unwrap();
        let f = Failure::Timeout;
        for _ in 0..50 {
            let d1 = provider.backoff(1, &f).as_millis();
            let d2 = provider.backoff(2, &f).as_millis();
            let d9 = provider.backoff(9, &f).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            assert!((100..=200).contains(&d2), "{d2}");
            assert!((175..=350).contains(&d9), "{d9}");
        }
        let limited = Failure::Status {
            status: 429,
            message: String::new(),
            code: None,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(provider.backoff(1, &limited), Duration::from_secs(7));
    }

    #[test]
    fn retry_classes() {
        let status = |status: u16, code: Option<&str>| Failure::Status {
            status,
            message: String::new(),
            code: code.map(str::to_string),
            retry_after: None,
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(status(s, None).retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!status(s, None).retryable(), "{s}");
        }
        assert!(!status(429, Some("insufficient_quota")).retryable());
        assert!(Failure::Connect(String::new()).retryable());
        assert!(!Failure::Decode(String::new()).retryable());
    }

    #[test]
    fn retry_after_headers_are_read() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.remove("retry-after-ms");
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused_without_echoing_it() {
        let config = EndpointConfig::new("http://h/v1", "m").with_api_key("sk-abc\n");
        let e = OpenAiProvider::new(config).unwrap_err().to_string();
        assert!(e.contains("check OPENAI_API_KEY"), "{e}");
        assert!(!e.contains("sk-abc"), "{e}");
    }

    #[test]
    fn reasoning_is_taken_out_of_the_reply() {
        let (text, notes) =
            strip_reasoning("<think>try ```c x``` first</think>\nHere:\n```c\nint y;\n```");
        assert_eq!(text, "\nHere:\n```c\nint y;\n```");
        assert_eq!(notes.len(), 1);
        let (text, notes) = strip_reasoning("plain");
        assert_eq!((text.as_str(), notes.len()), ("plain", 0));
        let (text, _) = strip_reasoning("answer <think>never closed ```c int z; ```");
        assert_eq!(text, "answer ");
    }

    #[test]
    fn a_prompt_counted_short_was_truncated() {
        // About 5.6k tokens.
        let long = Conversation::new("s", "x".repeat(20_000));
        assert!(truncated_prompt(&long, 4096).is_some(), "Ollama's ceiling");
        assert!(
            truncated_prompt(&long, 2500).is_some(),
            "far fewer than it holds"
        );
        assert!(
            truncated_prompt(&long, 5300).is_none(),
            "about what it holds"
        );
        assert!(truncated_prompt(&Conversation::new("s", "short"), 20).is_none());
    }

    #[test]
    fn tokens_add_up() {
        let a = TokenUsage {
            prompt_tokens: 10,
            completion_tokens: 5,
        };
        let total: TokenUsage = [a, a, a].into_iter().sum();
        assert_eq!(total.prompt_tokens, 30);
        assert_eq!(total.total(), 45);
    }
}
