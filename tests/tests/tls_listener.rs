//! A `listener "tcp"` with TLS (rustls): the server answers HTTPS with the
//! configured certificate (checked with curl against the certificate as
//! CA), a client that does not trust it is refused, and a key that does not
//! match the certificate stops start-up with a message naming both files.

use std::process::Command;

use anyhow::{Result, ensure};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::util;

/// A self-signed certificate for 127.0.0.1 (and a second, unrelated key).
fn make_cert(dir: &std::path::Path) -> Result<()> {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()?;
    ensure!(
        status.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let other = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(dir.join("other-key.pem"))
        .output()?;
    ensure!(other.status.success(), "openssl genpkey failed");
    Ok(())
}

fn curl(args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn tls_listener_serves_https_with_the_configured_certificate() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    let dir = node.dir.path().to_path_buf();
    make_cert(&dir)?;
    let tls_port = util::free_port()?;
    let stanza = |key: &str| {
        format!(
            "\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            dir.join("cert.pem").display(),
            dir.join(key).display()
        )
    };
    node.extra_config = stanza("key.pem");
    node.start().await?;

    let url = format!("https://127.0.0.1:{tls_port}/v1/sys/seal-status");
    let ca = dir.join("cert.pem");
    let (ok, body) = curl(&["--cacert", &ca.to_string_lossy(), &url])?;
    ensure!(ok, "HTTPS with the certificate as CA failed: {body}");
    let status: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(status["initialized"] == serde_json::json!(false), "{status}");
    // Without trusting the certificate, the handshake is refused.
    let (ok, body) = curl(&[&url])?;
    ensure!(!ok, "an untrusted certificate was accepted: {body}");
    // Plain HTTP on the TLS port is not answered as HTTP.
    let (ok, _) = curl(&[&format!("http://127.0.0.1:{tls_port}/v1/sys/seal-status")])?;
    ensure!(!ok, "plain HTTP answered on the TLS listener");
    node.stop();

    // A key that does not belong to the certificate stops start-up.
    node.extra_config = stanza("other-key.pem");
    std::fs::write(node.config_path(), node.config_text())?;
    let out = node.start_expecting_failure(&node.config_path())?;
    ensure!(out.contains("other-key.pem") && out.contains("cert.pem"), "{out}");
    Ok(())
}
