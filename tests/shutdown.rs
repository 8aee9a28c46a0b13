//! The binary as deployed: SIGTERM stops it gracefully, finishing a request that is in flight;
//! running out of file descriptors does not end it; and users' texts never reach its logs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fixture() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny").to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn serve() -> (Child, u16) {
    serve_with(|| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sentimiento"));
        command.arg("serve");
        command
    })
}

/// Starts the server on a free port. Tests of this file run side by side, and two of them can be
/// handed the same free port: the one whose server could not listen starts again on another.
fn serve_with(command: impl Fn() -> Command) -> (Child, u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let port = free_port();
        let mut child = command()
            .env("PORT", port.to_string())
            .env("MODEL_DIR", fixture())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while TcpStream::connect(("127.0.0.1", port)).is_err() && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(50));
        if child.try_wait().unwrap().is_none() {
            return (child, port);
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let (mut server, port) = serve();
    let body = r#"{"text": "me encanta este día"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Headers and half the body: the request is in flight when SIGTERM arrives.
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&server);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"output\":\"POS\""), "{response}");
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    // New connections are refused once it has stopped.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn running_out_of_file_descriptors_does_not_end_the_server() {
    // 48 descriptors, and no connection cap below that: accept() itself fails with EMFILE.
    let (mut server, port) = serve_with(|| {
        let mut command = Command::new("sh");
        command.args(["-c", "ulimit -n 48 && exec \"$0\" serve", env!("CARGO_BIN_EXE_sentimiento")]);
        command.env("SENTIMIENTO_MAX_CONNECTIONS", "1000").env("SENTIMIENTO_HEADER_TIMEOUT_S", "30");
        command
    });
    let idle: Vec<TcpStream> = (0..80).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.try_wait().unwrap().is_none(), "the server exited when accept() failed");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        if response.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "no answer once descriptors were free: {answer:?}");
    server.kill().unwrap();
    let logs = String::from_utf8_lossy(&server.wait_with_output().unwrap().stderr).into_owned();
    assert!(logs.contains("accept_failed"), "{logs}");
}

#[test]
fn texts_are_never_logged() {
    let secret = "mi secreto muy privado excelente";
    let output = Command::new(env!("CARGO_BIN_EXE_sentimiento"))
        .args(["predict", secret])
        .env("MODEL_DIR", fixture())
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("\"event\":\"request\""), "the request is logged: {logs}");
    assert!(!logs.contains("secreto"), "the text leaked into the logs: {logs}");
    assert!(!logs.contains("AWS_") && !logs.contains("PATH="), "no environment in logs: {logs}");
}
