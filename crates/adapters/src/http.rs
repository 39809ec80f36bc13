//! The one way baton builds an HTTP client for non-AWS calls (the Slack Web API, CloudFormation
//! response URLs): reqwest over rustls with the aws-lc-rs crypto provider, the one the AWS SDK
//! already links, so a function carries a single crypto library, and the system's root
//! certificates.

use std::sync::Once;

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
}
