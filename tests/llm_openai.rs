//! The OpenAI-compatible provider against a real HTTP server on loopback: what it sends, how it
//! retries, and the errors a user sees for the ways endpoints fail.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schedgen::generate::cost::PriceTable;
use schedgen::generate::extract::{extract_scheduler, ExtractError};
use schedgen::generate::llm::{
    ChatProvider, Conversation, EndpointConfig, LlmErrorKind, OpenAiProvider, TokenUsage,
};
use support::fake_openai::{FakeOpenAi, Step};

const KEY: &str = "sk-test-0123456789abcdef-secret";

const SCHEDULER: &str = "#include <scx/common.bpf.h>\n\
    char _license[] SEC(\"license\") = \"GPL\";\n\
    SCX_OPS_DEFINE(lt_ops, .name = \"longtail\");\n";

/// A provider for `server` with quick retries; `tune` adjusts the rest.
fn provider(server: &FakeOpenAi, tune: impl FnOnce(&mut EndpointConfig)) -> OpenAiProvider {
    let mut config = EndpointConfig::new(server.base_url(), "gpt-4.1").with_api_key(KEY);
    config.timeout = Duration::from_secs(10);
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    tune(&mut config);
    OpenAiProvider::new(config).unwrap()
}

#[test]
fn a_repair_conversation_is_sent_in_full_and_tokens_add_up() {
    let broken = "```c\nthis will not compile\nSCX_OPS_DEFINE(x_ops);\n```";
    let fixed = format!("Fixed:\n```c\n{SCHEDULER}```\n");
    let server = FakeOpenAi::start([
        Step::reply_with_usage(broken, 1200, 300),
        Step::reply_with_usage(fixed.clone(), 1600, 350),
    ]);
    let p = provider(&server, |_| {});

    let mut conversation = Conversation::new("You write sched_ext schedulers.", "Write one.");
    let first = p.chat(&conversation).unwrap();
    assert_eq!(first.text, broken);
    conversation.push_assistant(&first.text);
    conversation.push_user("The compiler said: error: unknown type. Fix it.");
    let second = p.chat(&conversation).unwrap();
    assert_eq!(second.text, fixed);
    assert_eq!(extract_scheduler(&second.text).unwrap().source, SCHEDULER);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.model(), Some("gpt-4.1"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
    let roles = |i: usize| -> Vec<String> {
        requests[i]
            .messages()
            .into_iter()
            .map(|(role, _)| role)
            .collect()
    };
    assert_eq!(roles(0), ["system", "user"]);
    assert_eq!(roles(1), ["system", "user", "assistant", "user"]);
    let sent = requests[1].messages();
    assert_eq!(sent[2].1, broken);
    assert!(sent[3].1.contains("error: unknown type"));

    let records = [first.record, second.record];
    let total: TokenUsage = records.iter().filter_map(|r| r.usage).sum();
    assert_eq!(total.prompt_tokens, 2800);
    assert_eq!(total.completion_tokens, 650);
    for r in &records {
        assert_eq!(r.attempts, 1);
        assert!(r.failures.is_empty());
        assert_eq!(r.served_model.as_deref(), Some("gpt-4.1"));
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert!(r.latency_s > 0.0);
    }
    // gpt-4.1 is $2 in / $8 out per million tokens.
    let cost = PriceTable::builtin().estimate_calls(&records);
    let expected = (2800.0 * 2.0 + 650.0 * 8.0) / 1e6;
    assert!((cost.usd.unwrap() - expected).abs() < 1e-12, "{cost:?}");
    let info = p.info();
    assert_eq!(info.provider, "openai");
    assert_eq!(
        info.endpoint_host,
        Some(server.base_url()[7..].replace("/v1", ""))
    );
}

#[test]
fn server_errors_are_retried_and_counted() {
    let server = FakeOpenAi::start([
        Step::error(500, "internal error"),
        Step::Status {
            status: 502,
            body: "<html>bad gateway</html>".to_string(),
            headers: vec![],
        },
        Step::reply(format!("```c\n{SCHEDULER}```")),
    ]);
    let notices = Arc::new(Mutex::new(Vec::new()));
    let seen = notices.clone();
    let p = provider(&server, |_| {})
        .with_retry_notice(move |line| seen.lock().unwrap().push(line.to_string()));
    let reply = p
        .chat(&Conversation::new("sys", "write a scheduler"))
        .unwrap();
    assert_eq!(reply.record.attempts, 3);
    assert_eq!(reply.record.failures.len(), 2);
    assert!(
        reply.record.failures[0].starts_with("HTTP 500"),
        "{:?}",
        reply.record.failures
    );
    assert!(
        reply.record.failures[1].starts_with("HTTP 502"),
        "{:?}",
        reply.record.failures
    );
    assert_eq!(server.requests().len(), 3);
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 2);
    assert!(notices[0].contains("retry 1 of 3"), "{notices:?}");
}

#[test]
fn rate_limits_wait_as_long_as_the_server_asks() {
    let server = FakeOpenAi::start([Step::rate_limited(1), Step::reply("```c\nx\n```")]);
    let p = provider(&server, |_| {});
    let start = Instant::now();
    let reply = p.chat(&Conversation::new("s", "u")).unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({:?})",
        start.elapsed()
    );
    assert_eq!(reply.record.attempts, 2);
    assert!(reply.record.failures[0].starts_with("HTTP 429"));
}

#[test]
fn persistent_failures_give_up_after_the_retry_limit() {
    let server = FakeOpenAi::start((0..5).map(|_| Step::error(503, "overloaded")));
    let p = provider(&server, |c| c.max_retries = 2);
    let e = p.chat(&Conversation::new("s", "u")).unwrap_err();
    assert_eq!(e.attempts, 3);
    assert!(
        matches!(e.kind, LlmErrorKind::Exhausted { attempts: 3, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("gave up after 3 attempts"), "{msg}");
    assert!(msg.contains("HTTP 503: overloaded"), "{msg}");
    assert_eq!(server.remaining(), 2);
}

#[test]
fn a_wrong_key_fails_at_once_without_showing_the_key() {
    // OpenAI echoes (part of) the key in its message; none of it may reach the user.
    let server = FakeOpenAi::start([
        Step::error(401, &format!("Incorrect API key provided: {KEY}.")),
        Step::reply("never sent"),
    ]);
    let p = provider(&server, |_| {});
    let e = p.chat(&Conversation::new("s", "u")).unwrap_err();
    assert!(
        matches!(e.kind, LlmErrorKind::Unauthorized { status: 401, .. }),
        "{e:?}"
    );
    assert_eq!(e.attempts, 1);
    assert_eq!(
        server.requests().len(),
        1,
        "a rejected key must not be retried"
    );
    let msg = e.to_string();
    assert!(msg.contains("rejected the API key"), "{msg}");
    assert!(msg.contains("check OPENAI_API_KEY"), "{msg}");
    for text in [msg, format!("{e:?}"), format!("{p:?}")] {
        assert!(!text.contains(KEY), "key leaked: {text}");
        assert!(
            !text.contains("0123456789abcdef"),
            "part of the key leaked: {text}"
        );
    }
}

#[test]
fn other_client_errors_are_not_retried_and_say_what_to_check() {
    let server = FakeOpenAi::start([Step::error(404, "The model `gpt-9` does not exist")]);
    let p = provider(&server, |c| c.model = "gpt-9".to_string());
    let e = p.chat(&Conversation::new("s", "u")).unwrap_err();
    assert_eq!(server.requests().len(), 1);
    let msg = e.to_string();
    assert!(
        msg.contains("HTTP 404: The model `gpt-9` does not exist"),
        "{msg}"
    );
    assert!(msg.contains("SCHEDGEN_MODEL"), "{msg}");
}

#[test]
fn a_slow_server_times_out_with_a_clear_error() {
    let slow = || Step::reply("late").delayed(Duration::from_secs(5));
    let server = FakeOpenAi::start([slow(), slow()]);
    let p = provider(&server, |c| {
        c.timeout = Duration::from_millis(300);
        c.max_retries = 1;
    });
    let start = Instant::now();
    let e = p.chat(&Conversation::new("s", "u")).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(e.kind, LlmErrorKind::Timeout { attempts: 2, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.failures,
        ["timed out after 0.3 s", "timed out after 0.3 s"]
    );
    let msg = e.to_string();
    assert!(msg.contains("no reply from"), "{msg}");
    assert!(msg.contains("within 0.3 s"), "{msg}");
    assert!(msg.contains("raise the timeout"), "{msg}");
}

#[test]
fn a_closed_port_is_reported_as_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = EndpointConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
    config.max_retries = 1;
    config.backoff_initial = Duration::from_millis(10);
    let e = OpenAiProvider::new(config)
        .unwrap()
        .chat(&Conversation::new("s", "u"))
        .unwrap_err();
    assert!(
        matches!(e.kind, LlmErrorKind::Unreachable { attempts: 2, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("check OPENAI_BASE_URL"), "{e}");
}

#[test]
fn a_reply_without_code_is_an_extract_error() {
    let server = FakeOpenAi::start([Step::reply("I'm sorry, I can't write kernel code.")]);
    let reply = provider(&server, |_| {})
        .chat(&Conversation::new("s", "u"))
        .unwrap();
    let e = extract_scheduler(&reply.text).unwrap_err();
    assert!(matches!(e, ExtractError::NoCode { .. }));
    assert_eq!(e.to_string(), "the model replied without a code block");
}

#[test]
fn malformed_and_empty_replies_are_explained() {
    let server = FakeOpenAi::start([
        Step::RawOk("<html>this is a web page</html>".to_string()),
        Step::reply(""),
        Step::Reply {
            content: "```c\nx\n```".to_string(),
            usage: None,
            finish_reason: "length".to_string(),
        },
    ]);
    let p = provider(&server, |_| {});
    let e = p.chat(&Conversation::new("s", "u")).unwrap_err();
    assert!(matches!(e.kind, LlmErrorKind::BadReply { .. }), "{e:?}");
    assert!(e.to_string().contains("usually ends in /v1"), "{e}");
    let e = p.chat(&Conversation::new("s", "u")).unwrap_err();
    assert!(matches!(e.kind, LlmErrorKind::EmptyReply { .. }), "{e:?}");
    let reply = p.chat(&Conversation::new("s", "u")).unwrap();
    assert_eq!(
        reply.record.usage, None,
        "missing usage is unknown, not zero"
    );
    assert_eq!(reply.record.finish_reason.as_deref(), Some("length"));
    assert_eq!(
        PriceTable::builtin().estimate_calls(&[reply.record]).usd,
        None
    );
}

#[test]
fn call_records_serialise_without_the_key() {
    let server = FakeOpenAi::start([Step::reply("hi")]);
    let p = provider(&server, |_| {});
    let reply = p.chat(&Conversation::new("s", "u")).unwrap();
    let json = serde_json::to_string(&(&reply, p.info())).unwrap();
    assert!(!json.contains(KEY), "{json}");
    assert!(json.contains("\"prompt_tokens\":100"), "{json}");
}
