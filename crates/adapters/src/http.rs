//! The one way baton builds an HTTP client for non-AWS calls (the Slack Web API, CloudFormation
//! response URLs): reqwest over rustls with the aws-lc-rs crypto provider, the one the AWS SDK
//! already links, so a function carries a single crypto library, and the system's root
//! certificates.

use std::path::Path;
use std::sync::Once;

/// The system's one file of root certificates: Amazon Linux 2023's (the `provided.al2023` Lambda
/// runtime) and the Debian family's (build and test machines).
const CA_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// The CA bundle the HTTPS clients should read, when the environment chooses none: the first of
/// `candidates` that is a non-empty file. `None` leaves rustls-native-certs to its own probing.
fn ca_bundle<'a>(
    ssl_cert_file: Option<&str>,
    ssl_cert_dir: Option<&str>,
    candidates: &[&'a str],
) -> Option<&'a str> {
    if ssl_cert_file.is_some() || ssl_cert_dir.is_some() {
        return None;
    }
    candidates.iter().copied().find(|path| {
        Path::new(path)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() > 0)
    })
}

/// Points the root certificates of every HTTPS client (the AWS SDK's and reqwest's both load
/// them through rustls-native-certs) at the system's CA bundle file by setting `SSL_CERT_FILE`,
/// unless `SSL_CERT_FILE` or `SSL_CERT_DIR` is set already. Left to its probing,
/// rustls-native-certs reads the bundle and then every file of the certificate directory beside
/// it (on Debian each root a second time, on Amazon Linux the bundle's OpenSSL "trusted" twin):
/// about 2 ms of a cold start, measured in docs/performance.md. Where no bundle file exists,
/// nothing changes.
///
/// Call it first in `main`, before any other thread exists: it writes the process environment.
pub fn use_the_system_ca_bundle() {
    let var = |name| std::env::var(name).ok();
    if let Some(path) = ca_bundle(
        var("SSL_CERT_FILE").as_deref(),
        var("SSL_CERT_DIR").as_deref(),
        &CA_BUNDLES,
    ) {
        std::env::set_var("SSL_CERT_FILE", path);
    }
}

static PROVIDER: Once = Once::new();

/// Makes aws-lc-rs the process's default rustls provider (once; a no-op when a provider is
/// already installed). reqwest is built without a provider of its own and uses this default.
pub fn install_crypto_provider() {
    PROVIDER.call_once(|| {
        // Err means another provider was installed first: that one serves as well.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Builds `builder` after installing the crypto provider.
pub fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    builder.build()
}

/// A client with reqwest's defaults.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    build(reqwest::Client::builder())
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_with_the_installed_provider() {
        assert!(super::client().is_ok());
        // A second build (and a second install) is fine.
        assert!(super::client().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn the_first_non_empty_bundle_is_chosen_unless_the_environment_chose() {
        let dir = std::env::temp_dir().join(format!("baton-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.crt");
        let bundle = dir.join("bundle.crt");
        std::fs::write(&empty, "").unwrap();
        std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let missing = dir.join("missing.crt");
        let (empty, bundle, missing) = (
            empty.to_str().unwrap(),
            bundle.to_str().unwrap(),
            missing.to_str().unwrap(),
        );
        let candidates = [missing, dir.to_str().unwrap(), empty, bundle];
        assert_eq!(super::ca_bundle(None, None, &candidates), Some(bundle));
        assert_eq!(super::ca_bundle(Some("/x.pem"), None, &candidates), None);
        assert_eq!(super::ca_bundle(None, Some("/certs"), &candidates), None);
        assert_eq!(super::ca_bundle(None, None, &[missing, empty]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
