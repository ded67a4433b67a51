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

/// SIGHUP reads the certificate files again (new connections get the new
/// certificate; unreadable files leave the one in use) and takes the
/// configuration file's log_level, as Vault's reload.
#[tokio::test]
async fn sighup_reloads_the_certificate_and_the_log_level() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    let dir = node.dir.path().to_path_buf();
    make_cert(&dir)?;
    let tls_port = util::free_port()?;
    node.extra_config = format!(
        "\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    node.start().await?;
    let url = format!("https://127.0.0.1:{tls_port}/v1/sys/seal-status");
    let first = dir.join("first.pem");
    std::fs::copy(dir.join("cert.pem"), &first)?;
    ensure!(
        curl(&["--cacert", &first.to_string_lossy(), &url])?.0,
        "the first certificate"
    );

    // A new certificate in place of the old, then SIGHUP.
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh)?;
    make_cert(&fresh)?;
    std::fs::copy(fresh.join("cert.pem"), dir.join("cert.pem"))?;
    std::fs::copy(fresh.join("key.pem"), dir.join("key.pem"))?;
    let config = std::fs::read_to_string(node.config_path())?.replace("log_level = \"info\"", "log_level = \"debug\"");
    std::fs::write(node.config_path(), config)?;
    let hup = || -> Result<()> {
        let pid = node.pid().ok_or_else(|| anyhow::anyhow!("not running"))?;
        ensure!(
            Command::new("kill")
                .arg("-HUP")
                .arg(pid.to_string())
                .status()?
                .success(),
            "kill -HUP"
        );
        Ok(())
    };
    hup()?;
    let new_ca = fresh.join("cert.pem");
    let mut switched = false;
    for _ in 0..50 {
        if curl(&["--cacert", &new_ca.to_string_lossy(), &url])?.0 {
            switched = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        switched,
        "the new certificate is not served after SIGHUP:\n{}",
        node.log_tail()
    );
    ensure!(
        !curl(&["--cacert", &first.to_string_lossy(), &url])?.0,
        "the old certificate is still served"
    );
    ensure!(
        node.log_tail().contains("log level changed"),
        "log level not reloaded:\n{}",
        node.log_tail()
    );
    ensure!(
        node.log_tail().contains("DEBUG"),
        "no debug lines after the reload:\n{}",
        node.log_tail()
    );

    // Unreadable files: the certificate in use stays, the log says why.
    std::fs::write(dir.join("cert.pem"), "not a certificate")?;
    hup()?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    ensure!(
        curl(&["--cacert", &new_ca.to_string_lossy(), &url])?.0,
        "a bad file replaced the certificate"
    );
    ensure!(node.log_tail().contains("was not reloaded"), "{}", node.log_tail());
    Ok(())
}
