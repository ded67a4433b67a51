//! The built-in key and certificate generators, run for real: the embedded
//! Wasm components through this runtime, their output checked by an
//! independent implementation (the `openssl` command): the RSA private key
//! parses and matches its public key; the client certificate chains to the
//! CA it was given, carries the common name from the template, and has the
//! requested key type, key size and signature hash.

use super::Runtime;
use crate::runtime::catalog::{self, CLIENT_CERT_GENERATOR, RSA_KEY_GENERATOR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> Arc<Runtime> {
    // RSA prime search in Wasm takes a while; give it room.
    let rt = Runtime::new(Duration::from_secs(300)).expect("runtime");
    catalog::register_builtins(&rt);
    rt
}

/// A fresh directory for one test's files.
fn scratch_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Run `openssl` in `dir`; returns (success, stdout + stderr).
fn openssl_status(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed for these tests (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl_status(dir, args);
    assert!(ok, "openssl {args:?} failed: {text}");
    text
}

fn get<'a>(out: &'a [(String, String)], key: &str) -> &'a str {
    out.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in the generator's output"))
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn rsa_keys_parse_and_match_their_public_keys() {
    let rt = runtime();
    let dir = scratch_dir("rsa-key");
    for bits in ["2048", "3072"] {
        let out = rt
            .generate(RSA_KEY_GENERATOR, &settings(&[("key_bits", bits), ("format", "pkcs8")]))
            .await
            .expect("generate");
        let private = get(&out, "private_key");
        let public = get(&out, "public_key");
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "PKIX PEM");
        std::fs::write(dir.join("key.pem"), private).expect("write");
        assert!(openssl(&dir, &["rsa", "-in", "key.pem", "-check", "-noout"]).contains("RSA key ok"));
        let text = openssl(&dir, &["pkey", "-in", "key.pem", "-noout", "-text"]);
        assert!(text.contains(&format!("({bits} bit")), "{bits} bits: {text}");
        assert_eq!(openssl(&dir, &["pkey", "-in", "key.pem", "-pubout"]), public);
    }
    // Two calls never give the same key.
    let a = rt.generate(RSA_KEY_GENERATOR, &[]).await.expect("generate");
    let b = rt.generate(RSA_KEY_GENERATOR, &[]).await.expect("generate");
    assert_ne!(get(&a, "private_key"), get(&b, "private_key"));
    for bad in [("key_bits", "1024"), ("format", "pkcs1")] {
        let err = rt
            .generate(RSA_KEY_GENERATOR, &settings(&[bad]))
            .await
            .expect_err("bad");
        assert!(err.to_string().contains("invalid"), "{err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A CA made by openssl: `name.pem` and `name.key`.
fn make_ca(dir: &Path, name: &str, newkey: &[&str], is_ca: bool) -> (String, String) {
    let constraints = if is_ca { "critical,CA:TRUE" } else { "CA:FALSE" };
    let config = format!(
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = Warden Test {name}\n\
         [ext]\nbasicConstraints = {constraints}\nkeyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
    );
    std::fs::write(dir.join(format!("{name}.cnf")), config).expect("write");
    let (pem, key, cnf) = (format!("{name}.pem"), format!("{name}.key"), format!("{name}.cnf"));
    let mut args = vec![
        "req", "-x509", "-nodes", "-days", "2", "-config", &cnf, "-keyout", &key, "-out", &pem,
    ];
    args.extend_from_slice(newkey);
    openssl(dir, &args);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("read");
    (read(&pem), read(&key))
}

#[tokio::test]
async fn client_certificates_chain_to_their_ca_with_the_requested_key() {
    let rt = runtime();
    let dir = scratch_dir("client-cert");
    let rsa_ca = make_ca(&dir, "rsa-ca", &["-newkey", "rsa:2048"], true);
    let ec_ca = make_ca(
        &dir,
        "ec-ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        true,
    );
    let ed_ca = make_ca(&dir, "ed-ca", &["-newkey", "ed25519"], true);
    // (CA, key_type, key_bits, signature_bits, what openssl shows for the
    // key, for the signature, and the private key's PEM label)
    let cases = [
        (
            &rsa_ca,
            "rsa",
            "2048",
            "384",
            "(2048 bit)",
            "sha384WithRSAEncryption",
            "RSA PRIVATE KEY",
        ),
        (
            &rsa_ca,
            "ec",
            "256",
            "512",
            "prime256v1",
            "sha512WithRSAEncryption",
            "EC PRIVATE KEY",
        ),
        (
            &ec_ca,
            "ec",
            "384",
            "256",
            "secp384r1",
            "ecdsa-with-SHA256",
            "EC PRIVATE KEY",
        ),
        (&ec_ca, "ed25519", "", "", "ED25519", "ecdsa-with-SHA256", "PRIVATE KEY"),
        (&ed_ca, "rsa", "3072", "", "(3072 bit)", "ED25519", "RSA PRIVATE KEY"),
        (
            &rsa_ca,
            "ec",
            "224",
            "256",
            "secp224r1",
            "sha256WithRSAEncryption",
            "EC PRIVATE KEY",
        ),
        (&ed_ca, "ec", "521", "", "secp521r1", "ED25519", "EC PRIVATE KEY"),
    ];
    let now = chrono::Utc::now().timestamp();
    let not_after = (now + 3600).to_string();
    for (i, (ca, key_type, key_bits, sig_bits, key_shown, sig_shown, label)) in cases.into_iter().enumerate() {
        let what = format!("case {i}: {key_type} {key_bits} signed with {sig_shown}");
        let out = rt
            .generate(
                CLIENT_CERT_GENERATOR,
                &settings(&[
                    ("key_type", key_type),
                    ("key_bits", key_bits),
                    ("signature_bits", sig_bits),
                    ("common_name_template", "{{.RoleName}}-{{.DisplayName}}-{{random 6}}"),
                    ("ca_cert", &ca.0),
                    ("ca_private_key", &ca.1),
                    ("display_name", "token"),
                    ("role_name", "app"),
                    ("not_after", &not_after),
                ]),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        std::fs::write(dir.join("ca.pem"), &ca.0).expect("write");
        std::fs::write(dir.join("cert.pem"), get(&out, "certificate")).expect("write");
        std::fs::write(dir.join("key.pem"), get(&out, "private_key")).expect("write");
        assert_eq!(get(&out, "private_key_type"), key_type, "{what}");
        assert!(
            get(&out, "private_key").starts_with(&format!("-----BEGIN {label}-----")),
            "{what}: {}",
            get(&out, "private_key").lines().next().unwrap_or_default()
        );
        assert_eq!(get(&out, "issuing_ca").trim(), ca.0.trim(), "{what}");

        let verified = openssl(
            &dir,
            &["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "cert.pem"],
        );
        assert!(verified.contains("cert.pem: OK"), "{what}: {verified}");
        let subject = openssl(
            &dir,
            &["x509", "-in", "cert.pem", "-noout", "-subject", "-nameopt", "RFC2253"],
        );
        let cn = subject
            .trim()
            .strip_prefix("subject=CN=")
            .unwrap_or_else(|| panic!("{what}: {subject}"));
        assert!(
            cn.starts_with("app-token-") && cn.len() == "app-token-".len() + 6,
            "{what}: {cn}"
        );
        assert_eq!(get(&out, "subject"), format!("CN={cn}"), "{what}");
        let text = openssl(&dir, &["x509", "-in", "cert.pem", "-noout", "-text"]);
        assert!(text.contains(key_shown), "{what}: key should show {key_shown}: {text}");
        assert!(
            text.contains(&format!("Signature Algorithm: {sig_shown}")),
            "{what}: {text}"
        );
        assert!(text.contains("TLS Web Client Authentication"), "{what}: {text}");
        assert!(text.contains("Digital Signature"), "{what}: {text}");
        // The private key is the certificate's.
        assert_eq!(
            openssl(&dir, &["x509", "-in", "cert.pem", "-noout", "-pubkey"]),
            openssl(&dir, &["pkey", "-in", "key.pem", "-pubout"]),
            "{what}"
        );
        // Valid until the lease ends, not longer.
        assert!(
            openssl_status(&dir, &["x509", "-in", "cert.pem", "-noout", "-checkend", "3500"]).0,
            "{what}"
        );
        assert!(
            !openssl_status(&dir, &["x509", "-in", "cert.pem", "-noout", "-checkend", "3700"]).0,
            "{what}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn client_certificates_need_a_real_ca() {
    let rt = runtime();
    let dir = scratch_dir("client-cert-bad");
    let ca = make_ca(
        &dir,
        "ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        true,
    );
    let other = make_ca(
        &dir,
        "other",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        true,
    );
    let leaf = make_ca(
        &dir,
        "leaf",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        false,
    );
    let not_after = (chrono::Utc::now().timestamp() + 600).to_string();
    let cases = [
        (&leaf.0, &leaf.1, "ec", "not marked for CA use"),
        (&ca.0, &other.1, "ec", "does not belong"),
        (&ca.0, &"junk".to_string(), "ec", "ca_private_key"),
        (&"junk".to_string(), &ca.1, "ec", "ca_cert"),
        (&ca.0, &ca.1, "dsa", "invalid key_type"),
    ];
    for (cert, key, key_type, expected) in cases {
        let err = rt
            .generate(
                CLIENT_CERT_GENERATOR,
                &settings(&[
                    ("key_type", key_type),
                    ("common_name_template", "{{.RoleName}}"),
                    ("ca_cert", cert),
                    ("ca_private_key", key),
                    ("role_name", "app"),
                    ("not_after", &not_after),
                ]),
            )
            .await
            .expect_err(expected);
        assert!(err.to_string().contains(expected), "{err} should say {expected:?}");
        assert!(
            !err.to_string().contains("PRIVATE KEY"),
            "no key material in errors: {err}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}
