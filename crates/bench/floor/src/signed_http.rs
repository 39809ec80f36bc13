//! A DynamoDB `PutItem` with nothing around it: the JSON body (serde_json), a SigV4 signature
//! (`aws-sigv4`, the SDK's own signing crate), one HTTP/1.1 request on a kept-alive connection
//! (hyper), the answer's body read and parsed. No retries, no timeouts, no TLS: it exists only to
//! measure what the AWS SDK's request pipeline costs above the least a request can cost, against
//! the bench's local emulator, so it refuses an `https` endpoint.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::Error;
use serde_json::{json, Value};

pub struct Client {
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port/`, and its text and authority for signing, made once.
    uri: http::Uri,
    uri_text: String,
    host: String,
    identity: Identity,
    region: String,
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set, or not text (BATON_FLOOR_CLIENT=signed-http reads it)").into()
    })
}

impl Client {
    /// From `AWS_ENDPOINT_URL` (plain HTTP), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN` (optional) and `AWS_REGION`.
    pub fn from_env() -> Result<Client, Error> {
        let endpoint = env("AWS_ENDPOINT_URL")?;
        let uri: http::Uri = format!("{}/", endpoint.trim_end_matches('/'))
            .parse()
            .map_err(|e| format!("AWS_ENDPOINT_URL `{endpoint}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(format!(
                "AWS_ENDPOINT_URL `{endpoint}`: the signed-http client speaks plain HTTP to a local emulator only"
            )
            .into());
        }
        let credentials = Credentials::new(
            env("AWS_ACCESS_KEY_ID")?,
            env("AWS_SECRET_ACCESS_KEY")?,
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "environment",
        );
        let (uri_text, host) = (
            uri.to_string(),
            uri.authority().map(ToString::to_string).unwrap_or_default(),
        );
        Ok(Client {
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
            uri,
            uri_text,
            host,
            identity: credentials.into(),
            region: env("AWS_REGION")?,
        })
    }

    /// A conditional `PutItem` of `{pk, sk, status}`; an answer other than 200 is an error with
    /// DynamoDB's message.
    pub async fn put_item(
        &self,
        table: &str,
        pk: &str,
        sk: &str,
        status: &str,
    ) -> Result<(), Error> {
        let body = serde_json::to_vec(&json!({
            "TableName": table,
            "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "status": {"S": status}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }))?;
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.PutItem"),
            ("host", self.host.as_str()),
        ];
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("dynamodb")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.uri_text,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let mut request = http::Request::post(self.uri.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request.body(Full::new(Bytes::from(body)))?;
        instructions.apply_to_request_http1x(&mut request);
        let answer = self.http.request(request).await?;
        let status_code = answer.status();
        let answer: Value =
            serde_json::from_slice(&answer.into_body().collect().await?.to_bytes())?;
        if status_code.is_success() {
            Ok(())
        } else {
            Err(format!("PutItem answered {status_code}: {answer}").into())
        }
    }
}
