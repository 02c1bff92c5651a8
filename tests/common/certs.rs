//! Certificates for the TLS tests, made with the `openssl` command: a throw-away authority
//! and a leaf it signs for `localhost` and 127.0.0.1 (a self-signed leaf would not do: a
//! certificate trusted as an authority cannot also serve as the end entity).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of one test's certificates.
pub struct Certs {
    /// The authority's certificate: what a peer must trust.
    pub ca: PathBuf,
    /// The leaf's certificate and key, presented by the engine and by SIPp.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// An authority and a leaf for `localhost` and 127.0.0.1.
    pub fn make(dir: &Path) -> Certs {
        Certs::make_for(dir, "DNS:localhost, IP:127.0.0.1")
    }

    /// An authority and a leaf for `names` (an X.509 subjectAltName value).
    pub fn make_for(dir: &Path, names: &str) -> Certs {
        let at = |name: &str| dir.join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-days", "2", "-subj", "/CN=hotline test CA"],
            ]
            .concat(),
            &[("-keyout", at("ca.key")), ("-out", at("ca.pem"))],
        );
        openssl(
            &[&["req"][..], &ec, &["-subj", "/CN=localhost"]].concat(),
            &[("-keyout", at("key.pem")), ("-out", at("leaf.csr"))],
        );
        std::fs::write(
            at("leaf.ext"),
            format!(
                "subjectAltName = {names}\nbasicConstraints = CA:FALSE\n\
                 extendedKeyUsage = serverAuth, clientAuth\n"
            ),
        )
        .expect("write the extensions");
        openssl(
            &["x509", "-req", "-days", "2", "-CAcreateserial"],
            &[
                ("-in", at("leaf.csr")),
                ("-CA", at("ca.pem")),
                ("-CAkey", at("ca.key")),
                ("-extfile", at("leaf.ext")),
                ("-out", at("cert.pem")),
            ],
        );
        Certs {
            ca: at("ca.pem"),
            cert: at("cert.pem"),
            key: at("key.pem"),
        }
    }

    /// SIPp's options to speak TLS with these.
    pub fn sipp_args(&self) -> Vec<String> {
        vec![
            "-t".into(),
            "l1".into(),
            "-tls_cert".into(),
            self.cert.display().to_string(),
            "-tls_key".into(),
            self.key.display().to_string(),
        ]
    }
}

fn openssl(args: &[&str], files: &[(&str, PathBuf)]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    for (flag, path) in files {
        cmd.arg(flag).arg(path);
    }
    let out = cmd.output().expect("run openssl (installed by make setup)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
