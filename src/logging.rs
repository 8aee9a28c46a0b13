//! Structured JSON logs. Under Lambda: no ANSI colours and no timestamps (CloudWatch adds its own).
//! A request's lines carry `"span": {"request_id": ...}` (handler.rs), e.g. for the CloudWatch
//! Logs filter `{ $.span.request_id = "..." }`.

use tracing_subscriber::EnvFilter;

pub fn init(on_lambda: bool) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr);
    // try_init: tests and repeated calls must not panic on an already set subscriber.
    let _ = if on_lambda { builder.without_time().try_init() } else { builder.try_init() };
}
